"""gdrun grad (issue 10): the value and every partial derivative at a point from the symbolic
derivative and from torch autograd, None (no path) for a variable that reaches the output only
through detach, the Hessian, the computation drawn as a tree; and --let on minimize."""

from __future__ import annotations

import json

import pytest
import yaml

E2 = "(x + y)**2 + y**3"
E2_DETACHED = "detach(x + y)**2 + y**3"
E2_LET = ["f + y**3", "--let", "z=x+y", "--let", "f=z**2"]


def grad_json(gdrun, *args):
    r = gdrun("grad", *args, "--json")
    assert r.code == 0, r.err
    return json.loads(r.out)


@pytest.mark.parametrize("args", [[E2], E2_LET])
def test_e2_numbers_on_both_backends(gdrun, args):
    data = grad_json(gdrun, *args, "--at", "x=2,y=3")
    for source in ("symbolic", "autograd"):
        assert data["value"][source] == 52.0
        assert data["gradient"][source] == {"x": 10.0, "y": 37.0}
    assert data["no_path"] == [] and data["agree"] == {"value": True, "gradient": True}
    assert data["at"] == {"x": 2.0, "y": 3.0} and data["rtol"] == 1e-12


def test_e2_detached_has_no_path_for_x(gdrun):
    for args in ([E2_DETACHED], ["detach(z)**2 + y**3", "--let", "z=x+y"]):
        data = grad_json(gdrun, *args, "--at", "2,3")
        for source in ("symbolic", "autograd"):
            assert data["gradient"][source] == {"x": None, "y": 27.0}
        assert data["no_path"] == ["x"] and data["agree"]["gradient"] is True
    r = gdrun("grad", E2_DETACHED, "--at", "x=2,y=3")
    assert r.code == 0, r.err
    row = next(line for line in r.out.splitlines() if line.startswith("d/dx"))
    assert row.count("None (no path)") == 2


def test_none_is_not_zero(gdrun):
    zero = grad_json(gdrun, "0*x + y", "--at", "1")
    assert zero["gradient"]["autograd"] == {"x": 0.0, "y": 1.0} == zero["gradient"]["symbolic"]
    assert zero["no_path"] == []
    none = grad_json(gdrun, "detach(x) + y", "--at", "1")
    assert none["gradient"]["autograd"] == {"x": None, "y": 1.0} == none["gradient"]["symbolic"]
    assert none["no_path"] == ["x"]
    only = grad_json(gdrun, "detach(x)", "--at", "2")  # explained, though nothing could be descended
    assert only["value"]["autograd"] == 2.0 and only["gradient"]["autograd"] == {"x": None}


def test_graph_shows_values_and_gradients_of_e2(gdrun):
    r = gdrun("grad", *E2_LET, "--at", "x=2,y=3", "--graph")
    assert r.code == 0, r.err
    assert "out = f + y**3  value 52  grad 1" in r.out
    assert "f = z**2  value 25  grad 1" in r.out
    assert "z = x + y  value 5  grad 10" in r.out
    assert "x  value 2  grad 10" in r.out and "y  value 3  grad 27" in r.out
    r = gdrun("grad", E2_DETACHED, "--at", "x=2,y=3", "--graph")
    assert "[detach] detach(x + y)  value 5  no gradient flows back (detach)" in r.out
    assert "x  value 2  grad None (no path)" in r.out and "y  value 3  grad 27" in r.out
    r = gdrun("grad", "z*z", "--let", "z=x*y", "--at", "2,3", "--graph")
    assert "z = x*y  value 6  grad 6  (d out/dz = 12 over all 2 uses)" in r.out and "z, see above  value 6  grad 6" in r.out


def test_hessian_of_booth_and_rosenbrock(gdrun):
    booth = grad_json(gdrun, "booth", "--at", "1,3", "--hessian")
    assert booth["hessian"]["symbolic"] == [[10.0, 8.0], [8.0, 10.0]] == booth["hessian"]["autograd"]
    assert booth["eigenvalues"]["symbolic"] == pytest.approx([2.0, 18.0], rel=1e-12)
    rosen = grad_json(gdrun, "rosenbrock", "--at", "1,1", "--hessian")
    for source in ("symbolic", "autograd"):
        assert rosen["eigenvalues"][source] == pytest.approx([0.3993607674876, 1001.6006392325], rel=1e-10)
    assert rosen["agree"] == {"value": True, "gradient": True, "hessian": True}
    r = gdrun("grad", "booth", "--at", "1,3", "--hessian")
    assert "eigenvalues (symbolic): 2, 18" in r.out and "eigenvalues (autograd): 2, 18" in r.out
    detached = grad_json(gdrun, E2_DETACHED, "--at", "2,3", "--hessian")
    assert detached["hessian"]["symbolic"] == [[0.0, 0.0], [0.0, 18.0]] == detached["hessian"]["autograd"]


@pytest.mark.parametrize(
    "args, needle",
    [
        (["x + y", "--at", "x=1"], "--at gives no value for the variable 'y'; variables: x, y"),
        (["x + y", "--at", "x=1,w=2"], "--at names 'w', which is not a variable"),
        (["z", "--let", "z=x+1", "--at", "z=1"], "'z', which is an intermediate name (let), not a variable"),
        (["x + y", "--at", "1,2,3"], "--at gives 3 number(s) for 2 variable(s): x, y"),
        (["x + y", "--at", "x=a,y=1"], "--at x must be a number"),
        (["x +"], "invalid expression 'x +'"),
        (["rosenbrok", "--at", "1"], "did you mean 'rosenbrock'?"),
        (["z", "--let", "1z=x"], "let name '1z' is not a name"),
        (["z", "--let", "z"], "let must look like NAME=EXPR"),
        (["z", "--let", "z=x", "--let", "w=y"], "let w is not used by the expression"),
        (["f", "--let", "f=z", "--let", "z=x"], "let f uses z, which is defined after it"),
        (["booth", "--let", "z=x"], "'booth' is a built-in function"),
        (["x", "--graph", "--json"], "choose one of --graph and --json"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(gdrun, args, needle):
    r = gdrun("grad", *args)
    assert r.code == 2
    assert r.err.count("\n") == 1 and r.err.startswith("gdrun: error: ") and needle in r.err, r.err
    assert "Traceback" not in r.err


def test_minimize_with_let_equals_the_expanded_run_and_round_trips(gdrun, tmp_path):
    common = ["--init", "x=1,y=2", "--lr", "0.05", "--epochs", "20", "--json"]
    a = gdrun("minimize", "f + y**2", "--let", "z=x-y", "--let", "f=z**2 + z", *common)
    b = gdrun("minimize", "(x - y)**2 + (x - y) + y**2", *common)
    assert a.code == 0 and b.code == 0, a.err + b.err
    ra, rb = (json.loads(r.out) for r in (a, b))
    assert ra["params"] == rb["params"] and ra["value"] == rb["value"]
    lets = {p: yaml.safe_load((p / "config.yaml").read_text())["let"] for p in (tmp_path / "runs").iterdir()}
    run_dir = next(p for p, let in lets.items() if let)
    assert lets[run_dir] == {"z": "x-y", "f": "z**2 + z"}
    again = gdrun("run", str(run_dir / "config.yaml"), "--json")
    assert again.code == 0, again.err
    assert json.loads(again.out)["params"] == ra["params"]
    by_set = json.loads(gdrun("minimize", "f + y**2", "--set", "let=[z=x-y, f=z**2 + z]", *common).out)
    assert by_set["params"] == ra["params"]


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("text", ["detach(x + y)**2 + y**2 + x*y", "detach(x + y)**2 + y**2"])
def test_a_descent_with_detach_matches_torch_optim(gdrun, backend, text):
    torch = pytest.importorskip("torch")
    r = gdrun("minimize", text, "--init", "x=1,y=2", "--lr", "0.1", "--epochs", "10",
              "--optimizer", "sgd:momentum=0.9", "--backend", backend, "--json")  # fmt: skip
    assert r.code == 0, r.err
    got = json.loads(r.out)["params"]
    x = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    y = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([x, y], lr=0.1, momentum=0.9)
    for _ in range(10):
        opt.zero_grad()
        loss = (x + y).detach() ** 2 + y**2 + (x * y if "x*y" in text else 0)
        loss.backward()  # without x*y, x.grad stays None and torch.optim skips x; gdrun's gradient 0 leaves it too
        opt.step()
    assert got["x"] == pytest.approx(float(x.detach()), rel=1e-12)
    assert got["y"] == pytest.approx(float(y.detach()), rel=1e-12)


def test_a_sweep_config_with_let_runs(gdrun, tmp_path):
    config = tmp_path / "let.yaml"
    config.write_text("function: z**2\nlet: {z: x - 3}\nepochs: 5\nlr: 0.1\nsweep: {params: {lr: [0.1, 0.2]}}\n")
    from gdrun.cli import main

    with pytest.raises(SystemExit) as info:
        main(["sweep", str(config), "--runs-dir", str(tmp_path / "runs"), "--json"])
    assert info.value.code == 0
