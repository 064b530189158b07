"""Parts of the reproductions, each built on an analysis package.

Each function runs one experiment in the quick or full configuration and returns a
Section whose claims set the paper's statement beside the measurement.
"""

from __future__ import annotations

from ..report._registry import ReportContext, Section
from ._registry import ReproConfig, part

# ----------------------------------------------------------------------------- Arora, Liang & Ma


def _trained_context(cfg: ReproConfig, which: str) -> ReportContext:
    """A report context on a zoo-trained model, shared by the parts of one run.

    "mlp": the 256-256 MLP (digits when quick, MNIST in full); "cnn": the CIFAR CNN (Adam;
    2 epochs on 4000 images when quick, 10 epochs on all of CIFAR-10 in full); "alexnet": a small
    AlexNet (the paper's net) with Gaussian initialisation as AlexNet's (Adam; 1 epoch on 1000 images
    when quick, 2 epochs on 25000 in full: minutes on a CPU).
    """
    from .. import zoo
    from ..train import TrainConfig

    key = f"arora-{which}"
    if key not in cfg.cache:
        if which == "mlp":
            data = "digits" if cfg.quick else cfg.mnist
            tm = zoo.trained("mlp:256-256", data, TrainConfig(epochs=30 if cfg.quick else 20, seed=cfg.seed,
                                                              device=cfg.device))
        elif which == "alexnet":
            tm = zoo.trained("alexnet_cifar", cfg.cifar,
                             TrainConfig(epochs=1 if cfg.quick else 2, lr=1e-3, optimizer="adam",
                                         seed=cfg.seed, device=cfg.device),
                             max_train=1000 if cfg.quick else 25000, init="gaussian")
        else:
            tm = zoo.trained("cifar_cnn", cfg.cifar,
                             TrainConfig(epochs=2 if cfg.quick else 10, lr=1e-3, optimizer="adam",
                                         seed=cfg.seed, device=cfg.device),
                             max_train=4000 if cfg.quick else None)
        cfg.cache[key] = ReportContext(model=tm.model, net=tm.net, data=tm.data, seed=cfg.seed,
                                       device=cfg.device, out_dir=cfg.out_dir, quick=cfg.quick,
                                       init_model=tm.init_model)
    return cfg.cache[key]


@part("arora", "random-like-mlp", "Random-like weights: MLP (trained vs initial)", order=10)
def arora_random_like_mlp(cfg: ReproConfig) -> Section:
    from ..spectrum.report import build

    return build(_trained_context(cfg, "mlp"))


@part("arora", "random-like-cnn", "Random-like weights: CIFAR-10 CNN (trained vs initial)", order=11)
def arora_random_like_cnn(cfg: ReproConfig) -> Section:
    from ..spectrum.report import build

    return build(_trained_context(cfg, "cnn"))


@part("arora", "random-like-alexnet",
      "Random-like weights: small AlexNet on CIFAR-10, Gaussian init (trained vs initial)", order=12)
def arora_random_like_alexnet(cfg: ReproConfig) -> Section:
    from ..spectrum.report import build

    return build(_trained_context(cfg, "alexnet"))


@part("arora", "shadow", "Shadow model: the theorems on Gaussian layers, reconstructions", order=20)
def arora_shadow(cfg: ReproConfig) -> Section:
    from ..shadow.report import build

    return build(_trained_context(cfg, "mlp"))


@part("arora", "shadow-training", "SHADOW training: digits, MNIST, CIFAR-10", order=30)
def arora_shadow_training(cfg: ReproConfig) -> Section:
    from ..shadow.experiment_report import reproduce_part, training_section

    rep, claims = reproduce_part(cfg.quick, cfg.seed, cfg.mnist, cfg.cifar)
    return training_section(rep, claims)


# ----------------------------------------------------------------------------- Behrmann et al.


@part("behrmann", "preimage", "Pre-images of ReLU layers on MNIST", order=10)
def behrmann_preimage(cfg: ReproConfig) -> Section:
    from ..preimage.report import reproduce_part

    return reproduce_part(cfg)


@part("behrmann", "stability", "Stability of the inverse: Jacobian spectra (CIFAR CNN)", order=20)
def behrmann_stability(cfg: ReproConfig) -> Section:
    from pathlib import Path

    from ..jacobian._reproduce import reproduce, section_for

    res = reproduce(cfg.cifar, quick=cfg.quick, seed=cfg.seed, device=cfg.device,
                    cache_dir=Path(cfg.out_dir) / "models")
    return section_for(res, cfg.quick, cfg.out_dir)


# ----------------------------------------------------------------------------- Tian


@part("tian", "teacher-student", "Teacher–student: mimicry and the theorems", order=10)
def tian_teacher_student(cfg: ReproConfig) -> Section:
    from ..teacher.report import reproduce, teacher_section

    return teacher_section(reproduce(quick=cfg.quick, seed=cfg.seed), cfg.quick)
