"""gdrun export tensorboard (the library part): real runs, a fit and a sweep made through the CLI,
exported, and read back with TensorBoard's own event reader; the one-line errors."""

from __future__ import annotations

import errno
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import SCALARS, TENSORS, EventAccumulator
from tensorboard.plugins.hparams import metadata as hparams_metadata

from gdrun.errors import GdrunError
from gdrun.export import MISSING_WRITER, export_tensorboard
from gdrun.runs import open_record
from gdrun.sweeps import RESULTS_FILE

REPO = Path(__file__).resolve().parents[1]
E1 = REPO / "configs" / "e1_x2_lr0.1_converges.yaml"


def read_back(folder: Path) -> EventAccumulator:
    """One exported run as TensorBoard reads it (every event kept)."""
    ea = EventAccumulator(str(folder), size_guidance={SCALARS: 0, TENSORS: 0})
    ea.Reload()
    return ea


def scalars(ea: EventAccumulator, tag: str) -> tuple[np.ndarray, np.ndarray]:
    events = ea.Scalars(tag)
    return np.array([e.step for e in events]), np.array([e.value for e in events], dtype=np.float32)


def hparams(ea: EventAccumulator) -> dict:
    """The run's hyperparameters from its hparams-plugin session, as plain values."""
    content = ea.PluginTagToContent("hparams")
    assert hparams_metadata.SESSION_START_INFO_TAG in content
    start = hparams_metadata.parse_session_start_info_plugin_data(content[hparams_metadata.SESSION_START_INFO_TAG])
    return {k: getattr(v, v.WhichOneof("kind")) for k, v in start.hparams.items()}


def text(ea: EventAccumulator, tag: str) -> str:
    (event,) = ea.Tensors(f"{tag}/text_summary")
    return event.tensor_proto.string_val[0].decode()


def assert_same_as_metrics(ea: EventAccumulator, record, steps: np.ndarray, value_tag: str) -> None:
    """Every recorded row at its step, to float32 (what TensorBoard stores)."""
    m = record.metrics
    names = [k for k in m if k not in ("epoch", "step", "updates", "value", "grad_norm", "lr")]
    for tag, column in [(value_tag, m["value"]), ("grad_norm", m["grad_norm"]), ("lr", m["lr"]),
                        *[(f"params/{n}", m[n]) for n in names]]:  # fmt: skip
        got_steps, got = scalars(ea, tag)
        np.testing.assert_array_equal(got_steps, steps, err_msg=tag)
        np.testing.assert_array_equal(got, column.astype(np.float32), err_msg=tag)


def sweep_dir(gdrun, tmp_path) -> Path:
    r = gdrun("sweep", str(E1), "-p", "lr=0.01,0.1,1.5", "--set", "epochs=20", "--set", "expect=null",
              "--runs-dir", str(tmp_path / "sweeps"), "--json")  # fmt: skip
    assert r.code == 0, r.err
    return Path(json.loads(r.out)["summary"]["sweep_dir"])


def test_minimize_run_reads_back_with_tensorboards_reader(gdrun, tmp_path):
    r = gdrun("minimize", "x**2 + y**2", "--init", "1,2", "--lr", "0.1", "--epochs", "20", "--quiet")
    assert r.code == 0, r.err
    record = r.record()
    logdir = tmp_path / "tb"
    assert export_tensorboard([record], logdir) == [logdir / record.path.name]
    ea = read_back(logdir / record.path.name)
    assert set(ea.Tags()["scalars"]) == {"value", "grad_norm", "lr", "params/x", "params/y"}
    assert_same_as_metrics(ea, record, record.metrics["step"].astype(int), "value")
    assert len(record.metrics["step"]) == 21
    hp = hparams(ea)
    assert hp["lr"] == 0.1 and hp["epochs"] == 20 and hp["function"] == "x**2 + y**2"
    assert hp["init.x"] == 1 and hp["status"] == "max_epochs" and hp["kind"] == "minimize"
    assert "expect" not in hp and "every" not in hp
    assert "function: x**2 + y**2" in text(ea, "config")
    assert text(ea, "status").startswith("**max_epochs**: ")


def test_fit_steps_are_optimizer_updates_with_the_epoch_alongside(gdrun, tmp_path):
    r = gdrun("fit", "w*x + b", "--x", "1,2,3,4", "--y", "2,4,6,8", "--batch-size", "2", "--init", "w=1,b=0",
              "--lr", "0.01", "--epochs", "5", "--quiet", "--runs-dir", str(tmp_path / "runs"))  # fmt: skip
    assert r.code == 0, r.err
    record = r.record()
    (folder,) = export_tensorboard([record], tmp_path / "tb")
    ea = read_back(folder)
    assert set(ea.Tags()["scalars"]) == {"loss", "grad_norm", "lr", "params/w", "params/b", "epoch"}
    steps = record.metrics["step"].astype(int)
    assert steps.tolist() == [0, 2, 4, 6, 8, 10]  # two mini-batches an epoch
    assert_same_as_metrics(ea, record, steps, "loss")
    got_steps, epochs = scalars(ea, "epoch")
    assert got_steps.tolist() == steps.tolist() and epochs.tolist() == [0, 1, 2, 3, 4, 5]
    hp = hparams(ea)
    assert hp["kind"] == "fit" and hp["fit.batch_size"] == 2 and hp["fit.model"] == "w*x + b" and hp["init.w"] == 1


def test_sweep_exports_one_folder_per_config(gdrun, tmp_path):
    sweep = sweep_dir(gdrun, tmp_path)
    logdir = tmp_path / "tb"
    one = open_record(sweep / "1")
    # the whole sweep and one of its configs: that config is written once
    folders = export_tensorboard([open_record(sweep), one], logdir)
    assert folders == [logdir / sweep.name / str(i) for i in range(3)]
    assert sorted(p.name for p in (logdir / sweep.name).iterdir()) == ["0", "1", "2"]
    for i, lr in enumerate([0.01, 0.1, 1.5]):
        config = open_record(sweep / str(i))
        ea = read_back(folders[i])
        assert_same_as_metrics(ea, config, config.metrics["updates"].astype(int), "value")
        assert hparams(ea)["lr"] == lr and hparams(ea)["status"] == "max_epochs"
        assert f"    lr: {lr}" in text(ea, "config").splitlines()
    # a config on its own goes under its sweep's name
    assert export_tensorboard([one], tmp_path / "tb2") == [tmp_path / "tb2" / sweep.name / "1"]


def test_hparams_tab_compares_a_minimize_run_and_a_fit(gdrun, tmp_path):
    """TensorBoard's hparams backend builds one experiment from every exported run's session."""
    from tensorboard import context
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.hparams import backend_context

    minimize = gdrun("minimize", "x2", "--lr", "0.1", "--epochs", "5", "--quiet").record()
    r = gdrun("fit", "w*x", "--x", "1,2,3", "--y", "2,4,6", "--init", "w=1", "--epochs", "5", "--quiet",
              "--runs-dir", str(tmp_path / "fits"))  # fmt: skip
    assert r.code == 0, r.err
    (fit_dir,) = (tmp_path / "fits").iterdir()
    fit = open_record(fit_dir)
    logdir = tmp_path / "tb"
    export_tensorboard([minimize, fit], logdir)
    mux = plugin_event_multiplexer.EventMultiplexer()
    mux.AddRunsFromDirectory(str(logdir))
    mux.Reload()
    provider = data_provider.MultiplexerDataProvider(mux, str(logdir))
    hp = backend_context.Context(base_plugin.TBContext(logdir=str(logdir), multiplexer=mux, data_provider=provider))
    ctx = context.RequestContext()
    experiment = hp.experiment_from_metadata(ctx, "", True, hp.hparams_metadata(ctx, ""),
                                             hp.hparams_from_data_provider(ctx, "", 100))
    names = {info.name for info in experiment.hparam_infos}
    assert {"lr", "function", "fit.model", "init.w", "status", "kind"} <= names
    assert {"value", "loss", "grad_norm"} <= {info.name.tag for info in experiment.metric_infos}


def test_non_finite_values_are_kept(gdrun, tmp_path):
    r = gdrun("minimize", "log(x)", "--init", "1", "--lr", "1", "--epochs", "10", "--quiet")
    record = r.record()
    assert not np.isfinite(record.metrics["value"][-1])
    (folder,) = export_tensorboard([record], tmp_path / "tb")
    ea = read_back(folder)
    assert_same_as_metrics(ea, record, record.metrics["step"].astype(int), "value")
    assert scalars(ea, "value")[1][-1] == -np.inf and scalars(ea, "grad_norm")[1][-1] == np.inf


def test_export_again_replaces_the_earlier_event_file(gdrun, tmp_path):
    r = gdrun("minimize", "x2", "--lr", "0.1", "--epochs", "10", "--quiet")
    record = r.record()
    (folder,) = export_tensorboard([record], tmp_path / "tb")
    first = list(folder.iterdir())
    assert export_tensorboard([record], tmp_path / "tb") == [folder]
    (event_file,) = folder.iterdir()
    assert event_file not in first
    assert len(read_back(folder).Scalars("value")) == 11  # not 22


def test_a_failed_write_keeps_the_earlier_export(gdrun, tmp_path, monkeypatch):
    from tensorboardX.event_file_writer import EventsWriter

    record = gdrun("minimize", "x2", "--lr", "0.1", "--epochs", "10", "--quiet").record()
    (folder,) = export_tensorboard([record], tmp_path / "tb")
    (earlier,) = folder.iterdir()
    content = earlier.read_bytes()
    written = []

    def full_disk(self, event):
        written.append(event)
        if len(written) > 5:
            raise OSError(errno.ENOSPC, "No space left on device")
        return EventsWriter.__dict__["_write_serialized_event"](self, event.SerializeToString())

    monkeypatch.setattr(EventsWriter, "write_event", full_disk)
    with pytest.raises(GdrunError) as info:
        export_tensorboard([record], tmp_path / "tb")
    assert info.value.exit_code == 4 and "disk full" in str(info.value) and "\n" not in str(info.value)
    assert list(folder.iterdir()) == [earlier] and earlier.read_bytes() == content


def test_missing_tensorboardx_is_a_one_line_error(gdrun, tmp_path, monkeypatch):
    record = gdrun("minimize", "x2", "--lr", "0.1", "--epochs", "3", "--quiet").record()
    for name in [m for m in sys.modules if m == "tensorboardX" or m.startswith("tensorboardX.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # import tensorboardX raises ImportError
    with pytest.raises(GdrunError) as info:
        export_tensorboard([record], tmp_path / "tb")
    assert str(info.value) == MISSING_WRITER and info.value.exit_code == 2
    assert "pip install 'gdrun[tensorboard]'" in MISSING_WRITER
    assert not (tmp_path / "tb").exists()


def test_bad_input_is_one_line_and_writes_nothing(gdrun, tmp_path):
    record = gdrun("minimize", "x2", "--lr", "0.1", "--epochs", "3", "--quiet").record()
    a_file = tmp_path / "file"
    a_file.write_text("")
    cases = [([record], a_file, "is a file"), ([], tmp_path / "tb", "nothing to export")]
    # a sweep none of whose configs has run
    sweep = sweep_dir(gdrun, tmp_path)
    results = sweep / RESULTS_FILE
    results.write_text(results.read_text().splitlines()[0] + "\n")
    cases.append(([open_record(sweep)], tmp_path / "tb", "no config of sweep"))
    # two runs of the same directory name
    twin = tmp_path / "elsewhere" / record.path.name
    shutil.copytree(record.path, twin)
    cases.append(([record, open_record(twin)], tmp_path / "tb", "would both export"))
    for records, logdir, needle in cases:
        with pytest.raises(GdrunError) as info:
            export_tensorboard(records, logdir)
        message = str(info.value)
        assert needle in message and "\n" not in message and info.value.exit_code == 2, message
    assert not (tmp_path / "tb").exists()


def test_the_command_line_names_runs_as_everywhere(gdrun, tmp_path):
    runs = tmp_path / "runs"
    gdrun("minimize", "x2", "--lr", "0.1", "--epochs", "4", "--quiet")
    gdrun("minimize", "x2", "--lr", "0.2", "--epochs", "4", "--quiet")
    r = gdrun("export", "tensorboard", "last", "last~1", "--logdir", str(tmp_path / "tb"), "--runs-dir", str(runs))
    assert r.code == 0, r.err
    from gdrun.history import entries

    newest, older = (e.path for e in entries(runs))
    assert r.out.splitlines() == [f"tensorboard: {tmp_path / 'tb' / newest.name}", f"tensorboard: {tmp_path / 'tb' / older.name}"]
    assert hparams(read_back(tmp_path / "tb" / newest.name))["lr"] == 0.2
    bad = gdrun("export", "tensorboard", "nope", "--logdir", str(tmp_path / "tb"), "--runs-dir", str(runs))
    assert bad.code == 2 and bad.err.startswith("gdrun: error: no run 'nope'") and bad.err.count("\n") == 1
    missing = gdrun("export", "tensorboard", "last", "--runs-dir", str(runs))
    assert missing.code == 2 and "Missing option '--logdir'" in missing.err
