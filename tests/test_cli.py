import numpy as np
import onnx
import pytest

from fastcnn.cli import main
from fastcnn.commands import DATA


def test_demo_prints_predictions_accuracy_and_latency(capsys):
    assert main(["demo", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "accuracy on 64 bundled samples: " in out
    acc = float(out.split("accuracy on 64 bundled samples: ")[1].split("%")[0])
    assert acc >= 90.0
    assert "predicted" in out and "latency, batch 1" in out


def test_run_random_inputs_and_files(tmp_path, capsys):
    model = f"{DATA}/digits_cnn.onnx"
    assert main(["run", model, "--shape", "image=3x1x8x8"]) == 0
    out = capsys.readouterr().out
    assert "output logits: [3, 10] float32" in out
    samples = np.load(f"{DATA}/digits_samples.npz")
    np.save(tmp_path / "x.npy", samples["images"][:5])
    res = tmp_path / "out.npz"
    assert main(["run", model, "--input", f"image={tmp_path / 'x.npy'}",
                 "--output", str(res)]) == 0
    logits = np.load(res)["logits"]
    assert logits.shape == (5, 10)
    np.testing.assert_array_equal(np.argmax(logits, 1), samples["labels"][:5])


@pytest.mark.parametrize("args,msg", [
    (["run", "/nonexistent.onnx"], "does not exist"),
    (["run", "{model}", "--input", "image"], "NAME=FILE.npy"),
    (["run", "{model}", "--shape", "image=1xAx8"], "integers"),
])
def test_run_errors_exit_2_with_a_message(args, msg, capsys):
    args = [a.format(model=f"{DATA}/digits_cnn.onnx") for a in args]
    assert main(args) == 2
    assert msg in capsys.readouterr().err


def test_bundled_model_is_valid_onnx():
    onnx.checker.check_model(onnx.load(f"{DATA}/digits_cnn.onnx"), full_check=True)
