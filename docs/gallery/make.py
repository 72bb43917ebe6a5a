"""Redraw the README's gallery: run each command with --plot into a temporary runs folder and keep
its picture here, made small (a 128-colour palette).

    python docs/gallery/make.py                       # every picture
    python docs/gallery/make.py compare_rosenbrock    # the ones named
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

#: picture name -> the gdrun command that draws it (as the README shows it)
GALLERY = {
    "e1_lr1_oscillates": "gdrun run configs/e1_x2_lr1_oscillates.yaml --plot",
    "e1_lr0.01_crawls": "gdrun run configs/e1_x2_lr0.01_200_steps_still_crawling.yaml --plot",
    "rosenbrock_momentum": "gdrun minimize rosenbrock --init -1.2,1 --lr 0.001 --opt momentum=0.9 --epochs 3000 --plot",
    "comparison": "gdrun minimize rosenbrock --init -1.2,1 --optimizer sgd,sgd:momentum=0.9,adam:lr=0.05 --lr 0.001 "
                  "--epochs 2000 --plot",
    "e3_fit_frozen": "gdrun run configs/e3_linear_fit_frozen_params.yaml --plot",
    "e5_parabola": "gdrun run configs/e5_parabola_minibatch_16.yaml --plot",
    "sweep_lr": "gdrun sweep configs/sweep_x2_which_lr_converges.yaml --explain --plot",
    "sweep_stability_map": "gdrun sweep configs/sweep_booth_lr_momentum_stability_map.yaml --explain --plot",
    "compare_rosenbrock": "gdrun compare rosenbrock --optimizer sgd,sgd:momentum=0.9,sgd:momentum=0.9:nesterov=true,adam,"
                          "rmsprop,adagrad --target 1e-6 --plot",
    "compare_rastrigin": "gdrun compare rastrigin --optimizer sgd,sgd:momentum=0.9,adam,rmsprop,adagrad --target 1 --plot",
}  # fmt: skip


def main() -> None:
    from PIL import Image

    work = Path(tempfile.mkdtemp(prefix="gdrun-gallery-"))
    env = {**os.environ, "GDRUN_CACHE_DIR": str(work / "cache")}
    try:
        chosen = sys.argv[1:] or list(GALLERY)
        for name in chosen:
            command = GALLERY[name]
            runs = work / name
            argv = [sys.executable, "-m", "gdrun", *command.split()[1:], "--runs-dir", str(runs), "--quiet"]
            done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True)
            pictures = sorted(runs.glob("*/plot.png"))
            if len(pictures) != 1:
                raise SystemExit(f"{command}: exit {done.returncode}, {len(pictures)} pictures: {done.stderr.strip()[-300:]}")
            image = Image.open(pictures[0]).convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT)
            image.save(HERE / f"{name}.png", optimize=True)
            print(f"{name}.png  {(HERE / f'{name}.png').stat().st_size // 1024} KiB  <- {command}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
