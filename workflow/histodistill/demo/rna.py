"""Negative-binomial RNA-seq counts whose programme gene sets follow the latent programmes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd


def choose_genes(gene_sets: Mapping[str, Sequence[str]], required_sets: Sequence[str],
                 n_genes: int, rng: np.random.Generator) -> list[str]:
    """All genes of ``required_sets`` plus random others from the GMT, ``n_genes`` in total.

    Using real HGNC symbols from the GMT makes the demo's pathway scoring match real sets.
    """
    missing = [s for s in required_sets if s not in gene_sets]
    if missing:
        raise ValueError(f"demo: gene sets {missing} are not in the GMT")
    required = sorted({g for s in required_sets for g in gene_sets[s]})
    universe = sorted({g for genes in gene_sets.values() for g in genes} - set(required))
    n_extra = n_genes - len(required)
    if n_extra < 0:
        raise ValueError(f"demo: n_genes={n_genes} < {len(required)} genes of the programmes")
    if n_extra > len(universe):
        raise ValueError(f"demo: the GMT has only {len(required) + len(universe)} genes")
    extra = rng.choice(universe, size=n_extra, replace=False).tolist()
    return sorted(required + extra)


def simulate_counts(genes: Sequence[str], programme_genes: Mapping[str, Sequence[str]],
                    z: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Counts (genes x samples, int64) for the samples (rows) of ``z``.

    log mean = gene baseline + library size + sum over programmes of effect * z, with per-gene
    effects in [0.4, 0.9] for the programme's genes; NB dispersion 0.08 + 0.5/mean.
    """
    genes = list(genes)
    index = {g: i for i, g in enumerate(genes)}
    n_samples = len(z)
    log_base = rng.normal(5.0, 1.5, len(genes))
    log_lib = rng.normal(0.0, 0.25, n_samples)
    log_mu = log_base[None, :] + log_lib[:, None]
    for name, members in programme_genes.items():
        cols = np.array([index[g] for g in members if g in index])
        effect = rng.uniform(0.4, 0.9, len(cols))
        log_mu[:, cols] += z[name].to_numpy()[:, None] * effect[None, :]
    # Two nuisance factors (e.g. batch, purity) on random genes, unrelated to outcome.
    for _ in range(2):
        cols = rng.choice(len(genes), size=len(genes) // 5, replace=False)
        log_mu[:, cols] += rng.normal(0, 0.3, n_samples)[:, None] * rng.uniform(0.3, 0.8, len(cols))
    mu = np.exp(log_mu)
    dispersion = 0.08 + 0.5 / mu
    counts = rng.poisson(rng.gamma(1.0 / dispersion, mu * dispersion))
    return pd.DataFrame(counts.T.astype(np.int64), index=pd.Index(genes, name="gene"),
                        columns=z.index)
