"""How a final model is built and where its risk groups split, in words (the bundle's
manifest and both reports say the same). The construction itself: deploy/bundle.py."""

CONSTRUCTION = ("the mean of the {k} cross-validation fold models (risk and survival curve); "
                "each member kept the epoch and tuning candidate of its own inner validation "
                "split; no refit")
THRESHOLD_RULE = {
    "survival": "median final-model risk of the training cohort's patients",
    "binary": "Youden's J of the final model's probabilities on the training cohort",
}
