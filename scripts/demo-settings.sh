# Sourced by train-local.sh and slurm/submit.sh: the learner flags of `--demo`
# (catch, small preset), kept in one place so the two launchers cannot drift.
# One actor's 8 envs fill one batch (B = 8); no queued batches and one decode
# thread keep the policy lag at 2 updates (at 4-6 the agent did not learn);
# Adam at a constant 1e-3 learns catch from ~150-250k frames on most seeds
# (docs/learning.md, "Why catch learned slowly").
DEMO_LEARNER_FLAGS=(--batch-size 8 --optimizer adam --learning-rate 1e-3
  --constant-learning-rate --queue-batches 0 --decode-threads 1)
