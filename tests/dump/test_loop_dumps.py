"""Loop and cond bodies in every dump: nested under their node in text, a DOT cluster per
body holding its nodes, nested records in JSON, a collapsible group per body in HTML (the
page's script run by node.js against the stand-in DOM of test_html.py)."""
import json
import re
import shutil
import subprocess

import numpy as np
import pytest

import graphc as gc
from tests.dump.test_html import DOM, parse, payload


@pytest.fixture
def nested():
    """map_fn over a foldl (a body inside a body) and a cond: (graph, fetches)."""
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float64, (None, 2, 3), name="x")
        W = gc.Variable(np.ones((3, 3)), name="W")
        ys = gc.map_fn(lambda m: gc.foldl(lambda a, r: a + gc.tanh(r @ W), m,
                                          initializer=gc.zeros_like(m[0])), x, name="rows")
        y = gc.cond(gc.sum(ys) > 0, lambda: gc.exp(ys), lambda: ys * 0.5)
        yield g, [y]


def test_text_nests_each_body_under_its_node(nested):
    _, fetches = nested
    lines = gc.dump(fetches).splitlines()
    at = next(i for i, s in enumerate(lines) if " = loop(" in s and not s.startswith(" "))
    assert lines[at + 1].startswith("  body: rows(")
    inner = next(i for i, s in enumerate(lines) if s.startswith("    ") and " = loop(" in s)
    assert lines[inner + 1].startswith("      body: foldl(")
    assert any(s.startswith("        ") and "= tanh(" in s for s in lines[inner + 2:])


def clusters(dot):
    """{cluster name: (its label, the node keys directly in it, the clusters in it)}."""
    found, stack = {}, []
    for line in dot.splitlines():
        s = line.strip()
        m = re.match(r"subgraph (\w+) \{", s)
        if m:
            stack.append(m.group(1))
            found[m.group(1)] = ["", [], []]
            if len(stack) > 1:
                found[stack[-2]][2].append(m.group(1))
        elif s == "}" and stack:
            stack.pop()
        elif stack and s.startswith("label="):
            found[stack[-1]][0] = json.loads(s[len("label="):-1])
        elif stack and re.match(r"\w+ \[label=", s):
            found[stack[-1]][1].append(s.split()[0])
    return found


def test_dot_draws_a_cluster_per_body_with_its_nodes_inside(nested):
    g, fetches = nested
    dot = gc.dump(fetches, format="dot")
    found = clusters(dot)
    outer = [n for n in g.nodes if n.op == "loop"][0]
    cond = [n for n in g.nodes if n.op == "cond"][0]
    body = found[f"cluster_n{outer.id}_body"]
    assert body[0].startswith("loop body: rows(")
    inner_loop = next(n for n in outer.attrs["body"].nodes if n.op == "loop")
    inner_name = f"cluster_n{outer.id}_body_n{inner_loop.id}_body"
    assert inner_name in body[2]  # the foldl's body nests in the map_fn's
    inner_body = inner_loop.attrs["body"]
    tanh = next(n for n in inner_body.nodes if n.op == "tanh")
    assert f"n{outer.id}_body_n{inner_loop.id}_body_n{tanh.id}" in found[inner_name][1]
    assert {f"cluster_n{cond.id}_true_body", f"cluster_n{cond.id}_false_body"} <= set(found)
    exp_key = f"n{cond.id}_true_body_n{next(n.id for n in cond.attrs['true_body'].nodes if n.op == 'exp')}"
    assert exp_key in found[f"cluster_n{cond.id}_true_body"][1]
    # every body node is declared once, in its cluster, and no edge leaves a body
    declared = re.findall(r"^\s*(\w+) \[label=", dot, re.M)
    assert len(declared) == len(set(declared))
    for src, dst in re.findall(r"^\s*(\w+) -> (\w+) ", dot, re.M):
        assert src.rpartition("_n")[0] == dst.rpartition("_n")[0] or "_" not in src + dst
    if shutil.which("dot"):
        done = subprocess.run(["dot", "-Tsvg"], input=dot, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    # the optimized stage too: bodies drawn beside the loop's kernel
    x = [n for n in g.nodes if n.op == "placeholder"][0].outputs[0]
    with g.as_default():
        f = gc.function([x], fetches)
    assert "subgraph cluster_" in f.dump(format="dot") and "_body" in f.dump(format="dot")


def test_json_nests_body_records(nested):
    g, fetches = nested
    doc = json.loads(gc.dump(fetches, format="json"))
    loop = next(r for r in doc["nodes"] if r["op"] == "loop")
    assert loop["attrs"]["body"] == "rows"
    body = loop["bodies"]["body"]
    assert body["name"] == "rows" and body["arguments"][0] == "x0:0"
    inner = next(r for r in body["nodes"] if r["op"] == "loop")
    assert any(r["op"] == "tanh" for r in inner["bodies"]["body"]["nodes"])
    cond = next(r for r in doc["nodes"] if r["op"] == "cond")
    assert set(cond["bodies"]) == {"true_body", "false_body"}
    assert all("bodies" not in r for r in doc["nodes"] if r["op"] not in ("loop", "cond"))


def test_html_payload_nests_bodies_with_path_ids(nested):
    _, fetches = nested
    data = payload(parse(gc.dump(fetches, format="html")))
    loop = next(n for n in data["nodes"] if n["op"] == "loop")
    (body,) = loop["bodies"]
    assert body["label"].startswith("body: rows(")
    first = body["nodes"][0]
    assert first["id"] == f"{loop['id']}/body/{first['local']}" and first["parent"] == loop["id"]
    inner = next(n for n in body["nodes"] if n["op"] == "loop")
    tanh = next(n for n in inner["bodies"][0]["nodes"] if n["op"] == "tanh")
    assert tanh["id"].startswith(inner["id"] + "/body/")
    assert all(src.startswith(inner["id"] + "/") for src, _ in tanh["inputs"])


SCENARIO = r"""
eval(SCRIPT);
flush();
const out = {stats: byId.stats.textContent};
const bodyGroups = () => byId.tree.all(n => n.tagName === "details" && n.className === "body");
const direct = d => entries(d).filter(e => {
  let p = e.parentNode; while (p.tagName !== "details") p = p.parentNode; return p === d;
}).map(nameOf);
out.bodies = bodyGroups().map(d => ({label: d.firstChild.childNodes[0].textContent,
                                     open: d.open, names: direct(d)}));
byId.collapse.fire("click"); flush();
out.openAfterCollapse = bodyGroups().filter(d => d.open).length;
byId.search.value = "tanh"; byId.search.fire("input"); flush();
out.search = shownNames(byId.results);
const hit = entries(byId.results)[0];
hit.firstChild.fire("click"); flush();
const info = hit.childNodes.find(c => c.className === "info");
const follow = field(info, "consumers").all(n => n.className === "link")[0];
out.followed = follow.textContent;
follow.fire("click"); flush();
const flashed = entries(byId.tree).filter(e => e.firstChild.classList.contains("flash") || e.scrolled);
out.reveal = {names: flashed.map(nameOf), visible: flashed.map(visible)};
byId.expand.fire("click"); flush();
out.openAfterExpand = bodyGroups().filter(d => d.open).length;
out.bodyCount = bodyGroups().length;
console.log(JSON.stringify(out));
"""


def run_page(text, scenario):
    """What `scenario` (JavaScript ending in console.log of JSON) finds on the HTML page
    `text`, run by node.js against the stand-in DOM of test_html.py."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node.js is not on the PATH")
    page = parse(text)
    script = re.search(r"<script>(.*)</script>", text, re.S).group(1)
    program = (f"const PAYLOAD = {json.dumps(page.text_of['graphc-data'])};\n"
               f"const SCRIPT = {json.dumps(script)};\nconst OPEN = '';\nconst QUERY = '';\n"
               + DOM[:DOM.index("eval(SCRIPT);")] + scenario)
    done = subprocess.run([node, "-"], input=program, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_html_page_shows_each_body_as_a_collapsible_group(nested):
    _, fetches = nested
    seen = run_page(gc.dump(fetches, format="html"), SCENARIO)
    assert "in loop and cond bodies" in seen["stats"]
    labels = [b["label"] for b in seen["bodies"]]
    assert any(label.startswith("body: rows(") for label in labels)
    assert any(label.startswith("body: foldl(") for label in labels)
    assert any(label.startswith("true_body: cond_true(") for label in labels)
    assert all(b["open"] for b in seen["bodies"])  # a small graph starts open
    foldl = next(b for b in seen["bodies"] if b["label"].startswith("body: foldl("))
    assert "tanh" in foldl["names"] and "matmul" in foldl["names"]
    assert seen["openAfterCollapse"] == 0
    assert seen["search"] == ["tanh"]
    # following tanh's consumer opens both bodies down to it
    assert seen["followed"] == "add"
    assert seen["reveal"] == {"names": ["add"], "visible": [True]}
    assert seen["openAfterExpand"] == seen["bodyCount"] == len(seen["bodies"])


def test_kernels_stage_nests_each_compiled_body_under_its_loop(nested):
    """f.dump(stage="kernels") in every format: each compiled body's kernels under the node
    (and the kernel) that runs it, the foldl's body inside the map_fn's."""
    g, fetches = nested
    x = next(n for n in g.nodes if n.op == "placeholder").outputs[0]
    f = gc.function([x], fetches, device="cpu")
    f(np.ones((2, 2, 3)))
    text = f.dump(stage="kernels").splitlines()
    rows = next(i for i, s in enumerate(text) if s.startswith("# body 'rows' of loop"))
    assert text[rows + 1].startswith("  kernel k0")
    foldl = next(i for i, s in enumerate(text) if s.startswith("  # body 'foldl' of loop"))
    assert foldl > rows and text[foldl + 1].startswith("    kernel k0")
    counts = {name: int(re.search(r": (\d+) kernels", text[i]).group(1))
              for name, i in (("rows", rows), ("foldl", foldl))}
    assert counts["rows"] >= 1 and counts["foldl"] >= 1

    doc = json.loads(f.dump(stage="kernels", format="json"))
    (outer,) = [b for b in doc["bodies"] if b["body"] == "rows"]
    host = next(k for k in doc["kernels"] if k["id"] == outer["kernel"])
    assert host["kind"] == "host" and "loop(" in host["expression"]
    assert len(outer["kernels"]) == counts["rows"]
    (inner,) = outer["bodies"]
    assert inner["body"] == "foldl" and len(inner["kernels"]) == counts["foldl"]
    assert any(k["id"] == inner["kernel"] and k["kind"] == "host" for k in outer["kernels"])

    found = clusters(f.dump(stage="kernels", format="dot"))
    around = found[f"cluster_k{outer['kernel']}"]
    assert f"k{outer['kernel']}" in around[1] and around[2] == ["cluster_b0"]
    label, keys, nested_clusters = found["cluster_b0"]
    assert label.startswith("body 'rows' of loop")
    wrapper = f"cluster_b0_k{inner['kernel']}"
    assert nested_clusters == [wrapper] and found[wrapper][2] == ["cluster_b0_b0"]
    assert found[wrapper][1] == [f"b0_k{inner['kernel']}"]  # the kernel running the foldl
    assert len([k for k in keys if re.fullmatch(r"b0_k\d+", k)]) + 1 == counts["rows"]
    assert found["cluster_b0_b0"][0].startswith("body 'foldl' of loop")
    assert len([k for k in found["cluster_b0_b0"][1] if re.fullmatch(r"b0_b0_k\d+", k)]) \
        == counts["foldl"]

    data = payload(parse(f.dump(stage="kernels", format="html")))
    loop = next(n for n in data["nodes"] if n["op"] == "loop" and n["kernel"] == outer["kernel"])
    group = next(b for b in loop["bodies"] if b["attr"] == "kernels")
    assert group["label"].startswith("body 'rows' of loop")
    assert [r["name"] for r in group["nodes"]] == [f"k{k['id']}" for k in outer["kernels"]]
    assert all(r["parent"] == loop["id"] and r["body"] == loop["bodies"].index(group)
               for r in group["nodes"])
    runner = next(r for r in group["nodes"] if r["name"] == f"k{inner['kernel']}")
    (inner_group,) = runner["bodies"]
    assert inner_group["label"].startswith("body 'foldl' of loop")
    assert len(inner_group["nodes"]) == counts["foldl"]
    # the page shows them: a collapsible group per compiled body, a row per kernel
    seen = run_page(f.dump(stage="kernels", format="html"), KERNEL_GROUPS)
    shown = {b["label"].split(" of ")[0]: b["names"] for b in seen}
    assert sorted(shown["body 'rows'"]) == sorted(r["name"] for r in group["nodes"])
    assert len(shown["body 'foldl'"]) == counts["foldl"]


KERNEL_GROUPS = r"""
eval(SCRIPT);
flush();
byId.expand.fire("click"); flush();
const direct = d => entries(d).filter(e => {
  let p = e.parentNode; while (p.tagName !== "details") p = p.parentNode; return p === d;
}).map(nameOf);
console.log(JSON.stringify(byId.tree.all(n => n.tagName === "details" && n.className === "body")
  .map(d => ({label: d.firstChild.childNodes[0].textContent, names: direct(d)}))
  .filter(b => b.label.startsWith("body '"))));
"""
