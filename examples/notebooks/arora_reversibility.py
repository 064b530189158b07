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
# # Are deep nets reversible? (Arora, Liang, Ma 2015)
#
# Arora, Liang and Ma argue that a ReLU net can be run **backwards**: given a hidden code
# `h = ReLU(Wᵀx + b)`, the *shadow model* draws an input
#
#     x̃ = ReLU(α W h) ⊙ dropout(ρ),    α = 2 / (ρ n) = 2 / t,
#
# and a forward pass of `x̃` gives back `h` up to a relative error `Õ(k/t)` (Theorem 1;
# `k` nonzeros in `h`, `t = ρ n` kept inputs). The proof assumes **random-like** weights:
# i.i.d.-looking Gaussian entries and singular values like those of a Gaussian matrix.
#
# This notebook checks both on a small MLP trained for a few seconds on the embedded
# `digits` data (8×8 images, no download):
#
# 1. are the trained weights random-like (entry statistics, Marchenko–Pastur spectra)?
# 2. Theorem 1 on Gaussian layers: does the error fall like `k/t`?
# 3. how reversible are the *trained* layers on real codes?
# 4. what images does the shadow model reconstruct from each hidden layer, trained vs
#    random weights?
#
# It runs in about half a minute on a laptop CPU. Open it with `jupytext --to notebook`
# or in Jupyter with jupytext installed (see the README).

# %%
# ruff: noqa: B018 (a cell's last expression is what the notebook shows)
import copy
import io

import matplotlib.pyplot as plt
import pandas as pd
import torch
from IPython.display import Image, display

from reluscope import data, nets, shadow, spectrum, to_frame
from reluscope.report import ReportContext, build_report
from reluscope.shadow._plots import plot_reconstruction
from reluscope.spectrum._plots import layer_figure
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
# `nets.mlp` builds a ReLU MLP 64 → 256 → 256 → 10; we keep a copy at initialisation to
# compare with, and train it for 5 epochs with `reluscope.train` (seeded: the same numbers
# on every run). `nets.load` turns the module into a chain of affine layers with their
# activations, the form every analysis below takes.

# %%
ds = data.load("digits")
torch.manual_seed(0)
model = nets.mlp([64, 256, 256, 10])
init_model = copy.deepcopy(model)
training = train(model, ds, TrainConfig(epochs=5, seed=0))
net = nets.load(model, input_shape=ds.spec.shape)
print(f"test accuracy after {training.config.epochs} epochs: {training.final['test_acc']:.3f}")
pd.DataFrame([{"layer": lay.name, "kind": lay.kind, "in": lay.in_shape, "out": lay.out_shape,
               "activation": lay.activation} for lay in net])

# %% [markdown]
# ## 1. Random-like weights
#
# `spectrum.analyze` compares every weight matrix with a Gaussian random matrix of the
# same shape, for the trained model and for the same architecture at initialisation:
#
# - **entries**: excess kurtosis (`kurtosis`) and a Kolmogorov–Smirnov (KS) test against
#   a Gaussian (`entries_ks` below the 1% critical value `entries_ks_crit` passes);
# - **spectrum**: eigenvalues of `WᵀW / n` against the Marchenko–Pastur (MP) law with a
#   fitted variance `mp_sigma`. Outliers (`num_spikes`) are eigenvalues above the MP
#   edge plus a Tracy–Widom margin; `ks_bulk` is the KS distance of the rest to MP, to be
#   read against `ks_noise`, the distance a true Gaussian matrix of this shape shows;
# - **tail**: the power-law exponent `alpha` of the largest eigenvalues (heavy tail: α
#   clearly below 4).
#
# The **verdict** sums this up: `random-like`, `spiked` (a few outliers above an MP
# bulk, typical after training: the learned signal), `heavy-tailed`, `non-MP bulk`, or
# `too small` (the 256 → 10 head has too few singular values to judge). At
# initialisation every judged layer should read random-like: that is the sanity check.
# The table has one row per layer (`init_*` columns: the same layer at initialisation);
# the figure shows the outliers and tail exponents per layer, trained against initial.

# %%
spec = spectrum.analyze(net, init_model=init_model, seed=0)
spec

# %% [markdown]
# The first layer in detail: histogram of the entries, the eigenvalue density against the
# MP law, the sorted singular values against a Gaussian matrix's, and the tail. Grey is
# the layer at initialisation. Outliers to the right of the MP edge are what training
# added to a random matrix.

# %%
show(layer_figure(spec.layers[0], spec.init[0]))

# %% [markdown]
# ## 2. Theorem 1 on Gaussian layers
#
# Before trusting the shadow model on a trained net, test the theorem where its
# assumptions hold exactly: one layer with `W ~ N(0, 1)`, random `k`-sparse codes `h`,
# `t = k / ratio` kept inputs. The relative error `‖h̃ − h‖² / ‖h‖²` is measured with
# three offsets `b`: none, the theorem's `b = −δ‖h‖` and the best scalar threshold (an
# exact 1-D search). The theorem predicts a log-log **slope ≈ 1** against `k/t` (up to log
# factors). This is a reduced sweep (n = 1024, k = 32, t = 128, 256, 512, two seeds);
# the report and `reluscope reproduce arora` run larger ones. The table has one row per
# run, the figure the error against `k/t` per offset rule with the fitted slopes.

# %%
theory = shadow.theorem1(ns=(1024,), ks=(32,), seeds=2, codes=32, seed=0)
theory

# %% [markdown]
# ## 3. Reversibility of the trained layers
#
# Now the real net: codes `h` are the ReLU outputs of test images at each hidden layer;
# the shadow model samples one layer down (ρ = 0.5) and the layer is run forward again.
# `alpha="fit"` keeps the model's form `ReLU(αWh)` but fits α by least squares: real
# codes are far from the theorem's random sparse ones, and its α misplaces the scale.
#
# Read the `error_rel_*` columns, one per offset rule (`none`, `theory`, `best`, and `net`:
# the layer's own bias): 0 is a perfect reversal, 1 is no better than predicting `h̃ = 0`.
# `k` is the mean number of active units and `t = ρ · fan-in`. The theorem's regime is
# `k < t < k²`; when `k` exceeds `t` (many active units, few kept inputs) its guarantee
# does not apply, and the measured error says how far the net is from it.

# %%
revs = shadow.reversibility_by_layer(net, ds.test.x[:64], rho=0.5, alpha="fit", generator=0)
to_frame(revs)  # one row per layer

# %% [markdown]
# ## 4. Reconstructing digits from hidden layers
#
# `shadow.reconstruct` takes the code of a test image at each hidden layer, runs the
# shadow model all the way down to the input (dropout-averaged), and compares with the
# same network whose weights are replaced by **random** ones of the same shapes and
# scale. If training made the net "more reversible", the trained columns should look
# more like the originals and have the lower error. Columns: `error_rel_mean_input` is
# the error of the dropout-averaged image, `..._input_scaled` the same after the best
# global scale (a brightness mismatch does not count), `..._hidden` the error of the
# code when the reconstruction is run forward again; `sample` columns use one draw. The
# figure plots the mean errors per layer.

# %%
rec = shadow.reconstruct(net, ds.test.x[:8], rho=0.5, generator=0)
rec

# %% [markdown]
# The images: each row a test digit, then per hidden layer its reconstruction with the
# trained and with the random weights (each image min-max scaled).

# %%
show(plot_reconstruction(rec))

# %% [markdown]
# ## The same analysis as a report
#
# Every analysis is also a section of the self-contained HTML report (`reluscope report`
# on the command line). `build_report` writes `index.html` and one JSON file per section
# and returns a `Report`, which shows the page right here (and unpacks as
# `path, outcomes` in scripts).

# %%
report = build_report(ReportContext(model=model, net=net, data=ds, training=training,
                                    init_model=init_model, out_dir="reluscope-report"),
                      only=["model", "spectrum"])
report
