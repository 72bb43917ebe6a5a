"""The sweep of bench_sweep.py written by hand in numpy: the yardstick gdrun's sweeps are measured against.

Adam (torch.optim's update, written out) on 2-D rosenbrock for N_LR learning rates (logspace(-4, -1))
x N_SIDE**2 start points (a grid over [-2, 2] x [-1, 3]), all of them one (B, 2) array with in-place
updates and the learning rate as a (B, 1) column. Every EVERY-th step's point, value and gradient
norm are kept in preallocated arrays and saved to OUT (.npz) at the end, with the final points.

    python benchmarks/hand_sweep.py N_LR N_SIDE STEPS EVERY OUT
"""

import sys

import numpy as np


def main(n_lr: int, n_side: int, steps: int, every: int, out: str) -> None:
    lrs = np.logspace(-4, -1, n_lr)
    starts = np.array([[x, y] for x in np.linspace(-2, 2, n_side) for y in np.linspace(-1, 3, n_side)])
    B = n_lr * len(starts)
    lr = np.repeat(lrs, len(starts))[:, None]  # config i: lr i // starts, start i % starts (gdrun's grid order)
    X = np.tile(starts, (n_lr, 1))
    m, v, G, tmp = np.zeros_like(X), np.zeros_like(X), np.empty_like(X), np.empty_like(X)
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    kept = steps // every + 1
    rec_x, rec_f, rec_g = np.empty((kept, B, 2)), np.empty((kept, B)), np.empty((kept, B))
    for t in range(steps + 1):
        x, y = X[:, 0], X[:, 1]
        d = y - x * x
        f = (1 - x) ** 2 + 100 * d * d
        G[:, 0] = -2 * (1 - x) - 400 * x * d
        G[:, 1] = 200 * d
        if t % every == 0:
            k = t // every
            rec_x[k], rec_f[k], rec_g[k] = X, f, np.sqrt((G * G).sum(1))
        if t == steps:
            break
        np.subtract(G, m, out=tmp)  # m = lerp(m, g, 1 - beta1), as torch computes it
        tmp *= 1 - beta1
        m += tmp
        v *= beta2
        np.multiply(G, G, out=tmp)
        tmp *= 1 - beta2
        v += tmp
        bias1, bias2 = 1 - beta1 ** (t + 1), 1 - beta2 ** (t + 1)
        np.sqrt(v, out=tmp)
        tmp /= np.sqrt(bias2)
        tmp += eps
        np.divide(m, tmp, out=tmp)
        tmp *= lr / bias1
        X -= tmp
    np.savez(out, x=rec_x, f=rec_f, g=rec_g, final=X)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
