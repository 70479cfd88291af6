"""Training one model on one fold, honestly: everything fitted on the fold's training part."""
