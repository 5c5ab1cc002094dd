"""plot_model, to_categorical, datasets."""
import shutil

import numpy as np
import pytest

import graphc as gc
import graphc.frontend as gk

L = gk.layers


def two_branch():
    x = gk.Input((4,), name="features")
    a = L.Dense(3, name="left")(x)
    b = L.Dense(3, name="right")(x)
    return gk.Model(x, L.Add(name="sum")([a, b]))


def test_plot_model_writes_dot_with_every_edge(tmp_path):
    path = gk.utils.plot_model(two_branch(), tmp_path / "m.dot")
    text = open(path).read()
    assert text.startswith('digraph "') and "left|Dense|(None, 3)" in text
    assert "features|InputLayer|(None, 4)" in text and text.count("->") == 4


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_plot_model_renders_svg(tmp_path):
    path = gk.utils.plot_model(two_branch(), tmp_path / "m.svg")
    assert "<svg" in open(path).read() and (tmp_path / "m.dot").exists()


def test_plot_model_without_graphviz_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(gc.GraphcError, match="Graphviz's `dot` program is not on PATH"):
        gk.utils.plot_model(two_branch(), tmp_path / "m.png")
    assert (tmp_path / "m.dot").exists()


def test_sequential_plot_is_a_chain(tmp_path):
    model = gk.Sequential([L.Input((3,)), L.Dense(2), L.Dense(1)])
    text = gk.utils.model_to_dot(model)
    assert text.count("->") == 2


def test_to_categorical():
    np.testing.assert_array_equal(gk.utils.to_categorical([2, 0], 3),
                                  [[0, 0, 1], [1, 0, 0]])
