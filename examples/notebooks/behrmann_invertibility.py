# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Pre-images and stability of ReLU layers (Behrmann et al. 2018)
#
# How much of its input does a ReLU layer `y = ReLU(A x + b)` keep? Behrmann, Dittmer,
# Fernsel and Maass answer in two ways.
#
# **Pre-images.** The inputs with the same output form a convex set. The positive outputs
# `P` give equations `A_P x = y_P − b_P`, the zero outputs `Z` inequalities
# `A_Z x + b_Z ≤ 0`. The set is
#
# - a **singleton** when `A_P` has full rank `n` (this needs at least `n` positive outputs),
# - else **compact** (a bounded polytope) when the inactive rows, projected onto the null
#   space of `A_P`, are *omnidirectional* (every half-space contains one of them; an LP
#   decides it),
# - else **unbounded**: the input can move along a direction without changing the output.
#
# **Stability.** Near an input the net is linear, `J = A_L D_{L−1} ⋯ D_1 A_1` with `D`
# the 0/1 masks of the active units. The singular values of each layer's Jacobian say how
# stably the input could be recovered from that layer: a zero singular value is a lost
# direction, a huge condition number an unstable inverse.
#
# This notebook measures both on a small MLP trained for a few seconds on the embedded
# `digits` data (64 pixels). The hidden widths (96, then 64) sit near the input
# dimension on purpose: that is where the pre-image kinds differ.

# %%
# ruff: noqa: B018 (a cell's last expression is what the notebook shows)
import copy
import io

import matplotlib.pyplot as plt
import pandas as pd
import torch
from IPython.display import Image, display

from reluscope import data, jacobian, nets, preimage, to_frame
from reluscope.preimage._plots import positives_histogram
from reluscope.train import TrainConfig, train


def show(fig):
    """Display a matplotlib figure as a PNG (whatever the backend) and free it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    display(Image(buf.getvalue()))


# %% [markdown]
# ## A small trained net
#
# 64 → 96 → 64 → 10, trained for 5 epochs (seeded), with a copy kept at initialisation.

# %%
ds = data.load("digits")
torch.manual_seed(0)
model = nets.mlp([64, 96, 64, 10])
init_model = copy.deepcopy(model)
training = train(model, ds, TrainConfig(epochs=5, seed=0))
net = nets.load(model, input_shape=ds.spec.shape)
init_net = nets.load(init_model, input_shape=ds.spec.shape)
x = ds.test.x[:60]  # the test samples classified below
print(f"test accuracy: {training.final['test_acc']:.3f}; ReLU layers: {net.relu_layers()}")

# %% [markdown]
# ## 1. Pre-images of the first ReLU layer
#
# `preimage.classify_layer` classifies, for each test sample, the pre-image of the
# layer's output (96 outputs of 64 inputs here), with a certificate checked for each
# answer. One row per sample: `kind`, `n_positive` (positive outputs), `rank` of `A_P`,
# `null_dim` (the dimension left free by the equations) and how it was decided; the
# figure counts the positive outputs per sample, by kind.

# %%
first = preimage.classify_layer(net, 0, x, workers=1)
first

# %% [markdown]
# The same layer at initialisation, and the counts side by side. Read them against the
# input dimension `n = 64`: a sample with more than 64 positive outputs can be (and
# here usually is) a singleton; below it, the inactive rows decide between compact and
# unbounded.

# %%
first_init = preimage.classify_layer(init_net, 0, x, workers=1)
pd.DataFrame([{"weights": name, **res.batch.counts(), "mean positives": res.batch.n_positive.mean()}
              for name, res in [("trained", first), ("at initialisation", first_init)]])

# %% [markdown]
# The slide's figure: the number of positive outputs per sample, stacked by pre-image
# kind; the dashed line marks `n`.

# %%
show(positives_histogram([("trained", first.batch), ("at initialisation", first_init.batch)], first.n))

# %% [markdown]
# The second ReLU layer maps 96 inputs to 64 outputs: fewer outputs than inputs, so its
# equations can never pin the input down, and here too few inactive rows remain to
# surround the null space. Every pre-image is unbounded: this layer forgets directions
# of its input (in its own input space, the first layer's outputs).

# %%
second = preimage.classify_layer(net, 1, x, workers=1)
pd.DataFrame([{"layer": second.label, "m x n": f"{second.m} x {second.n}", **second.batch.counts(),
               "mean positives": second.batch.n_positive.mean()}])

# %% [markdown]
# ## 2. Omnidirectionality of random rows: Wendel's theorem
#
# For `k` rows drawn i.i.d. from a symmetric distribution in `R^d`, Wendel's theorem
# gives the probability that they are omnidirectional,
# `1 − 2^{−(k−1)} Σ_{i<d} C(k−1, i)`: exactly 1/2 at `k = 2d`, tending to 1 above. This
# checks the LP test behind the classification against that closed form: `estimate` is
# the fraction of 60 random draws it finds omnidirectional, `stderr` its standard error,
# and `z` the difference to the formula in standard errors (|z| ≲ 2 is sampling noise).
#
# Wendel's formula is why random layers are expected to give compact pre-images *when
# the rows are symmetric*. At a real sample, though, the inactive rows are those with
# `a_i·x + b_i ≤ 0`: a selection by the sample that breaks the symmetry, so the layer at
# initialisation above need not follow the formula.

# %%
checks = [preimage.monte_carlo_omni(k, d, trials=60, seed=0) for k, d in [(6, 4), (8, 4), (12, 4)]]
pd.DataFrame([{"k rows": c.k, "dimension d": c.d, "wendel (exact)": c.exact, "estimate": c.estimate,
               "stderr": c.stderr, "z": c.z_score} for c in checks])

# %% [markdown]
# ## 3. Stability: Jacobian spectra of every layer
#
# `jacobian.spectra` computes, at a few test inputs, the full singular values of the
# Jacobian of every layer output (before, `pre`, and after, `post`, each activation) with
# respect to the 64 input pixels. Columns: `rank` (numerical), `condition` (largest over
# smallest *nonzero* singular value), `sigma_max`, `sigma_min`, and `active` units. A
# ReLU keeps only the rows of active units: when fewer than 64 remain the rank drops and
# the input can no longer be recovered from that layer; the condition number grows with
# depth as the small singular values decay. One row per output and sample; the figure is
# the paper's "decay over layers" (median over the samples, band: min–max).

# %%
spec = jacobian.spectra(net, ds.test.x[:4])
spec

# %% [markdown]
# The paper's other figure, the effect of ReLU: the spectra just before and just after
# each ReLU (zeroed rows remove singular values).

# %%
show(jacobian.effect_of_relu_figure(spec))

# %% [markdown]
# ## 4. The lemma on removing weakly correlated rows
#
# Behrmann et al. bound the smallest nonzero singular value of `D_I A` (rows `I`
# removed by the ReLU) by a constant `c` when a removed row is weakly correlated with
# every kept row. At each ReLU layer and sample, `jacobian.lemma_checks` computes the
# lemma's bound `c_bound` (the smallest admissible `c` over the removed rows that meet its
# hypothesis) and checks it against the measured `sigma_min` (`holds`; `ratio` is how
# tight the bound is).

# %%
to_frame(jacobian.lemma_checks(net, ds.test.x[:2]))
