"""Synthetic feature sets with known precision/recall, for tests, docs and the benchmark.

Features of real images live near a low-dimensional manifold of a high-dimensional space;
the model here is a mixture of Gaussian modes in a ``latent_dim``-dimensional latent space,
mapped into ``dim`` dimensions by a fixed random orthonormal map, plus small isotropic noise
of total norm ``noise``. Everything is a pure function of the seeds.
"""
from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Manifold:
    """A mixture of ``modes`` unit Gaussians in latent space, embedded in ``dim`` dims."""

    dim: int = 64
    latent_dim: int = 8
    modes: int = 10
    spread: float = 8.0     # std of the mode centres (in units of a mode's std)
    noise: float = 0.05     # norm of the off-manifold isotropic noise
    seed: int = 0

    def _embedding(self) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.seed, 1])
        centres = rng.normal(0, self.spread, (self.modes, self.latent_dim))
        q, _ = np.linalg.qr(rng.normal(size=(self.dim, self.latent_dim)))
        return centres, q.T  # [modes, q], [q, dim] orthonormal rows

    def embed(self, z: np.ndarray, seed: int) -> np.ndarray:
        _, basis = self._embedding()
        rng = np.random.default_rng([seed, 2])
        x = z @ basis
        x += rng.normal(0, self.noise / np.sqrt(self.dim), x.shape)
        return x.astype(np.float32)

    def sample(self, n: int, seed: int, modes: list[int] | None = None) -> np.ndarray:
        """``n`` points from all modes, or only from ``modes`` (mode dropping)."""
        centres, _ = self._embedding()
        rng = np.random.default_rng([seed, 3])
        pool = np.arange(self.modes) if modes is None else np.asarray(modes)
        z = centres[rng.choice(pool, n)] + rng.normal(size=(n, self.latent_dim))
        return self.embed(z, seed)

    def off_manifold(self, n: int, seed: int, scale: float = 3.0, min_mode_dist: float = 4.0) -> np.ndarray:
        """Bad samples: latents from a wide Gaussian (``scale`` × the centre spread), kept only
        if at least ``min_mode_dist`` mode-stds from every mode centre, so none is "good"."""
        centres, _ = self._embedding()
        rng = np.random.default_rng([seed, 4])
        out = np.empty((0, self.latent_dim))
        while len(out) < n:
            z = rng.normal(0, scale * self.spread, (2 * n, self.latent_dim))
            dist = np.linalg.norm(z[:, None, :] - centres[None], axis=-1).min(axis=1)
            out = np.concatenate([out, z[dist >= min_mode_dist]])
        return self.embed(out[:n], seed)


def with_fraction(good: np.ndarray, bad: np.ndarray, fraction: float, seed: int = 0) -> np.ndarray:
    """Replace a ``fraction`` of ``good`` rows (chosen at random) by rows of ``bad``."""
    rng = np.random.default_rng(seed)
    n_bad = int(round(fraction * len(good)))
    out = good.copy()
    out[rng.choice(len(good), n_bad, replace=False)] = bad[:n_bad]
    return out
