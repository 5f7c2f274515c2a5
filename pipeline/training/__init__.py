"""Training and evaluating the scar classifier: :mod:`.train` (labels, features, fit, save),
:mod:`.evaluate` (object scores, stratified samples, area estimates), :mod:`.verdicts` (the one
reader of analysts' verdict CSVs)."""
