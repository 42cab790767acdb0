"""Domain adaptation of the encoder: training data (pairs.py), batching (sampler.py), hard negatives
(negatives.py), metrics and evaluators (metrics.py), atomic output (output.py), the run's flags (config.py) and its
report (report.py). `chatbot.train` is the command."""
