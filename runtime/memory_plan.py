"""The static memory plan of a native program: which of a run's buffers may share storage.

The kernels and host steps of a program run in one fixed order, so every buffer is live from
the first step that touches it to the last: `Lifetimes` finds those intervals once per
executable, from what the compiler found each kernel touches (graphc.kernels.access.Access).
Buffers whose intervals do not overlap may take the same storage, and `pack` lays them out in
one arena per plan (the fed shapes fix the sizes): largest first, each at the lowest 64-byte
aligned offset no buffer live at the same time occupies (best fit among gaps). Both native
devices plan so, the CPU in host memory, CUDA in the GPU's.

In place: an elementwise kernel may write its output over an input that dies in that kernel,
when the kernel is one perfect loop nest storing one value at each position in turn and every
load of that input reads the position being stored (so each element is read before it is
overwritten, and never after), and its target allows it (Access.in_place is empty where not).
The two buffers then count as one.

Buffers that outlive a run are never shared: the caller's outputs, feeds, variables,
constants, and the new values of assigned variables (handed to the session).

A variable's new value may be computed straight into the variable's storage (`writes_over`)
where nothing can tell: no step reads the variable after the kernel that starts writing the
value (that kernel reads it, if at all, only in place), and no step from that kernel on can
fail, so a failed run still leaves every variable as it was.

After a kernel reports a bad index, the runtime runs the failing fusion group again through
the reference (NativeExecutable._diagnose), on inputs that may come from before its segment.
It learns of the report at the next host step at the latest (the CPU right after the segment;
CUDA at a host step or the end of the run), so a segment's inputs stay live until that host
step, and are never overwritten in place.
"""
ALIGN = 64


class Lifetimes:
    """When each buffer of a program is live, in steps (kernels and host steps) counted in
    order, and which writes may go in place.

    steps: the program's steps; each is ("native", [Access of each kernel]), ("host", slots
    read, slots written) or ("copy", slots read, slots written): copies on the device, which
    neither fail nor read a kernel's error report. private: slots that never share storage.
    itemsize: bytes per element of each slot's storage (an output overwrites an input in
    place only element for element)."""

    def __init__(self, steps, private, itemsize):
        self.private = frozenset(private)
        self.first, self.last = {}, {}
        self.used_last = {}  # the last step that touches each slot (self.last: up to the next
        # host step for a segment's inputs, which a diagnosis may re-read)
        self.in_place = []  # (output slot, input slot) candidates, in program order
        self.kernel_in_place = set()  # every kernel's (output, input it may overwrite)
        self.last_fallible = -1  # the last step that can raise: a host step or an index check
        position = 0
        segments = []  # where the native steps since the last host step start
        for step in steps:
            if step[0] != "native":
                if step[0] == "host":
                    self._keep_inputs(segments, position - 1)
                    segments = []
                    self.last_fallible = position
                self._touch(position, set(step[1]) | set(step[2]))
                position += 1
                continue
            segments.append(position)
            written = set()
            for kernel in step[1]:
                self._touch(position, kernel.reads | kernel.writes)
                self.kernel_in_place.update((kernel.output, i) for i in kernel.in_place)
                self.in_place += [(kernel.output, i) for i in kernel.in_place
                                  if i in written and itemsize[i] == itemsize[kernel.output]]
                if kernel.may_fail:
                    self.last_fallible = position
                written |= kernel.writes
                position += 1
        self._keep_inputs(segments, position - 1)
        # a candidate whose input lives on past the kernel (kept by a later step) is dropped
        self.in_place = [(o, i) for o, i in self.in_place
                         if self.last[i] == self.first[o] and o not in self.private
                         and i not in self.private]

    def _keep_inputs(self, starts, end):
        """The inputs of the segments starting at `starts` (born before, read from there on)
        stay live to `end`, where a diagnosis may read them."""
        for start in starts:
            for slot, first in self.first.items():
                if first < start and self.last[slot] >= start:
                    self.last[slot] = max(self.last[slot], end)

    def writes_over(self, pairs):
        """The (new value, variable) pairs among `pairs` whose new value may be computed in
        the variable's storage: its first writer is a kernel after the last step that can
        fail, and the variable is touched after that kernel by nothing, and by the kernel
        itself only where it may write in place."""
        out = []
        for new, var in pairs:
            writer, last_read = self.first.get(new, -1), self.used_last.get(var, -1)
            if writer > self.last_fallible and (last_read < writer or (
                    last_read == writer and (new, var) in self.kernel_in_place)):
                out.append((new, var))
        return out

    def _touch(self, position, slots):
        for slot in slots:
            self.first.setdefault(slot, position)
            self.last[slot] = self.used_last[slot] = position


def pack(lifetimes, nbytes):
    """({slot: byte offset in the arena}, arena bytes) for the shareable slots, given every
    slot's size in bytes (nbytes[slot])."""
    # an output and the input it overwrites become one unit (chains of them too); an output
    # takes one input at most: two inputs of one kernel are live at once
    root = {}

    def find(slot):
        while slot in root:
            slot = root[slot]
        return slot
    for out, inp in lifetimes.in_place:
        if nbytes[out] == nbytes[inp] and out not in root:
            root[out] = find(inp)
    units = {}
    for slot in lifetimes.first:
        if slot not in lifetimes.private:
            units.setdefault(find(slot), []).append(slot)
    spans = []  # (bytes, first, last, root)
    for r, members in units.items():
        size = -(-max(nbytes[s] for s in members) // ALIGN) * ALIGN
        spans.append((size, min(lifetimes.first[s] for s in members),
                      max(lifetimes.last[s] for s in members), r))
    spans.sort(key=lambda s: (-s[0], s[1], s[3]))
    placed, offset_of, total = [], {}, 0  # placed: (offset, end, first, last)
    for size, first, last, r in spans:
        taken = sorted((o, e) for o, e, f, l in placed if f <= last and first <= l)
        best, best_gap, cursor = None, None, 0
        for o, e in taken:
            gap = o - cursor
            if gap >= size and (best_gap is None or gap < best_gap):
                best, best_gap = cursor, gap
            cursor = max(cursor, e)
        offset = cursor if best is None else best
        placed.append((offset, offset + size, first, last))
        offset_of[r] = offset
        total = max(total, offset + size)
    return {s: offset_of[r] for r, members in units.items() for s in members}, total

