# Sourced by train-local.sh and slurm/submit.sh: the learner flags of `--demo`
# (catch, small preset), kept in one place so the two launchers cannot drift.
# docs/learning.md, "Why one run in five did not learn", measures each.
#
# --discount 0.9: an action in catch decides only whether the falling ball is
# caught, at most 6 steps later; with IMPALA's 0.99 the return it is judged by
# also carries the next balls of the episode (5 balls, 30 steps), which it
# hardly affects and which are not yet on the screen. That noise made the demo
# slow, seed-dependent and intolerant of policy lag: a board-reading MLP in
# the same V-trace loop learns in 45k frames on every seed at 0.9; at 0.99 it
# took 1.5x as long or did not learn in 1.5e5, unless an episode is one ball.
# Adam at 1e-3, with a warm-up over the first 5e4 frames, times the learner's
# linear decay to 0 over the run: the attention heads commit to an object
# within the first ~20 updates, and Adam's first steps, taken on a handful of
# gradients, are mostly noise; held constant, runs that had learned collapsed
# late.
# One actor's 8 envs fill one batch (B = 8); no queued batches and one decode
# thread keep the policy lag at 2 updates, the quickest data; the demo also
# learns with 2 actors (lag 3) and with --queue-batches 4 (lag 5-6).
DEMO_LEARNER_FLAGS=(--batch-size 8 --optimizer adam --learning-rate 1e-3 --discount 0.9
  --warmup-frames 5e4 --queue-batches 0 --decode-threads 1)
