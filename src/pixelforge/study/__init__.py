"""Studies: experiments that use pixelforge's models to answer a question, with a fixed protocol.

``augment``: does a class-conditional generator help a small classifier (real only, real +
generated, generated only, on equal budgets)? See :mod:`pixelforge.study.augment`.
"""

from pixelforge.study.augment import ARMS, run_augment_study
from pixelforge.study.classifier import ClassifierBudget, SmallCNN, accuracy, train_classifier

__all__ = [
    "ARMS",
    "ClassifierBudget",
    "SmallCNN",
    "accuracy",
    "run_augment_study",
    "train_classifier",
]
