"""Fitted preprocessing: encoders, imputation, scaling, duplicates and leakage checks."""

from winnow.prep.preprocessor import FeatureSpec, Matrices, Preprocessor

__all__ = ["FeatureSpec", "Matrices", "Preprocessor"]
