"""Learners behind one small protocol, and their fusion into one calibrated score."""

from winnow.models.base import Inputs, Learner, make_learner

__all__ = ["Inputs", "Learner", "make_learner"]
