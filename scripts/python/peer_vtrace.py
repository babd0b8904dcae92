#!/usr/bin/env python3
"""A peer for learning: the demo's agent, game and hyperparameters in a
minimal plain-PyTorch V-trace loop, independent of the Rust system.

Why it exists (docs/learning.md, "The peer"): when the demo fails to learn on
a seed, this loop tells whether the recipe is at fault (the peer fails too) or
the project's data path, loss or optimizer (the peer learns where the project
does not). It shares nothing with the Rust code but the model's definition in
scripts/python/reference_model.py, which the model tests already hold the Rust model
to, and the settings named below.

What it runs, all in one process, one thread:
  - catch as common/env/src/catch.rs defines it (7x7 cells of 6x6 pixels, RGB 42x42,
    5 balls an episode, +1/-1 when a ball lands), E environments in numpy;
  - the `small` preset's attention agent (scripts/python/reference_model.py),
    initialised as common/agent/src/model does (He uniform for ReLU layers, Glorot
    for the ConvLSTM, zero biases, PyTorch's default for the LSTM and the
    heads), drawn from torch.manual_seed(seed) in the Rust var store's order,
    so that a seed gives the Rust learner's initial weights exactly (a test
    holds it to that);
  - actors' steps sampled from the policy, unrolls of T+1 steps overlapping by
    one, with the recurrent state from before step 0;
  - V-trace (rho-bar = c-bar = 1) and the IMPALA loss summed over time and
    batch (baseline cost 0.5, entropy cost 0.01, rewards clipped to [-1, 1]),
    gradient-norm clipping at 40, Adam (betas 0.9/0.999, eps 1e-5): the
    learner's defaults; and the demo's own settings (scripts/launch/demo-settings.sh):
    discount 0.9, Adam at 1e-3 with a warm-up over 5e4 frames times a linear
    decay to 0 over the run, B = 8, T = 20, 4 heads, a policy lag of 2
    updates;
  - `--lag K`: the actors act with the weights of K updates ago (0: fully
    synchronous), to measure what policy lag does with nothing else changed;
  - `--agent mlp`: a feed-forward net over the board's cells in place of the
    attention agent, a control for the loop itself.

Flags reproduce the demo's former settings: `--discount 0.99
--constant-learning-rate --warmup-frames 0 --heads 2`.

Per update it logs the return of the episodes that ended, the losses, the
mean |log rho|, the policy's entropy and, per head, the attention on the
ball's cell, on the paddle's cell and the map's entropy.

It writes RUN_DIR/logs.csv (frames, episodes, mean_episode_return, ...) and
meta.json, so scripts/python/learning_curves.py reads its runs as it reads the
demo's.

  .venv/bin/python scripts/python/peer_vtrace.py --out runs/peer-s1 --seed 1 [--total-frames 4e5] [--lag 2]
  seq 1 10 | xargs -P 2 -I{} .venv/bin/python scripts/python/peer_vtrace.py --out runs/peer-s{} --seed {}
  .venv/bin/python scripts/python/learning_curves.py runs/peer-s*
"""

import argparse
import collections
import csv
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference_model import AttentionAgent  # noqa: E402

# --- catch (common/env/src/catch.rs) -------------------------------------------------

ROWS, COLS, CELL = 7, 7, 6
BALLS_PER_EPISODE = 5
BALL_RGB = np.array([250, 200, 60], np.uint8)
PADDLE_RGB = np.array([60, 160, 250], np.uint8)


class Catch:
    """E games of catch stepped together; `step` resets finished games itself
    and reports their returns, as an actor does."""

    def __init__(self, envs, seed, balls=BALLS_PER_EPISODE):
        self.balls_per_episode = balls
        self.rng = np.random.default_rng(seed)
        self.n = envs
        self.paddle = np.full(envs, COLS // 2)
        self.ball_row = np.zeros(envs, np.int64)
        self.ball_col = self.rng.integers(0, COLS, envs)
        self.balls = np.zeros(envs, np.int64)
        self.ret = np.zeros(envs)

    def frames(self):
        """RGB [E, 42, 42, 3]: the ball fills its cell, the paddle the lower
        half of its cell in the last row."""
        f = np.zeros((self.n, ROWS * CELL, COLS * CELL, 3), np.uint8)
        for e in range(self.n):
            p = self.paddle[e] * CELL
            f[e, (ROWS - 1) * CELL + CELL // 2:, p:p + CELL] = PADDLE_RGB
            r, c = self.ball_row[e] * CELL, self.ball_col[e] * CELL
            f[e, r:r + CELL, c:c + CELL] = BALL_RGB
        return f

    def step(self, actions):
        """Returns (reward [E], done [E], finished returns)."""
        self.paddle = np.clip(self.paddle + actions - 1, 0, COLS - 1)
        lands = self.ball_row + 1 == ROWS - 1
        reward = np.where(lands, np.where(self.ball_col == self.paddle, 1.0, -1.0), 0.0)
        self.ret += reward
        self.balls += lands
        done = self.balls >= self.balls_per_episode
        finished = list(self.ret[done])
        self.ball_row = np.where(lands, 0, self.ball_row + 1)
        self.ball_col = np.where(lands, self.rng.integers(0, COLS, self.n), self.ball_col)
        # A finished game starts over (paddle centred, new ball already drawn).
        self.paddle = np.where(done, COLS // 2, self.paddle)
        self.balls = np.where(done, 0, self.balls)
        self.ret = np.where(done, 0.0, self.ret)
        return reward, done, finished


# --- the model's initialisation (common/agent/src/model) -----------------------------

def small_config(num_actions=3, agent="attention", heads=4):
    """common/wire/src/config.rs ModelConfig::small."""
    return {
        "agent": agent, "attention_logits": "scaled_per_part", "normalize_keys": True,
        "height": 42, "width": 42, "in_channels": 3,
        "convs": [
            {"out_channels": 16, "kernel": 6, "stride": 6, "padding": [0, 0]},
            {"out_channels": 32, "kernel": 1, "stride": 1, "padding": [0, 0]},
            {"out_channels": 32, "kernel": 1, "stride": 1, "padding": [0, 0]},
        ],
        "convlstm_channels": 32, "convlstm_kernel": 1, "key_channels": 8,
        "basis_frequencies": 4, "heads": heads, "query_hidden": 64,
        "answer_mlp": [128, 64], "core_units": 64, "num_actions": num_actions,
    }


def initialise(model, seed):
    """Draws every weight as common/agent/src/model does, in the order its var store
    creates them (queries, vision, core), from torch.manual_seed(seed): the
    same generator and calls as the Rust learner's, so the same numbers."""
    torch.manual_seed(seed)

    def uniform_(t, bound):
        with torch.no_grad():
            t.copy_(torch.empty(t.shape).uniform_(-bound, bound))

    def he(layer, fan_in):
        uniform_(layer.weight, math.sqrt(6.0 / fan_in))
        with torch.no_grad():
            layer.bias.zero_()

    if not model.baseline_agent:
        for i in (0, 2, 4):
            he(model.query[i], model.query[i].in_features)
    else:
        he(model.pool, model.pool.in_features)
    for conv in model.convs:
        he(conv, conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1])
    w = model.convlstm.weight
    k = w.shape[2] * w.shape[3]
    uniform_(w, math.sqrt(6.0 / (w.shape[1] * k + w.shape[0] * k)))
    with torch.no_grad():
        model.convlstm.bias.zero_()
    for i in (0, 2):
        he(model.answer_mlp[i], model.answer_mlp[i].in_features)
    units = model.lstm.hidden_size
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        uniform_(getattr(model.lstm, name), 1.0 / math.sqrt(units))
    for head in (model.policy, model.baseline):
        uniform_(head.weight, 1.0 / math.sqrt(head.in_features))
        uniform_(head.bias, 1.0 / math.sqrt(head.in_features))


def rust_named(model):
    """The model's weights under the Rust var store's names (the inverse of
    reference_model.AttentionAgent.load_rust_weights)."""
    out = {}
    for i, conv in enumerate(model.convs):
        out[f"vision.conv{i}.weight"], out[f"vision.conv{i}.bias"] = conv.weight, conv.bias
    out["vision.convlstm.weight"], out["vision.convlstm.bias"] = (model.convlstm.weight,
                                                                  model.convlstm.bias)
    if model.baseline_agent:
        out["pool.weight"], out["pool.bias"] = model.pool.weight, model.pool.bias
    else:
        for i, layer in enumerate((0, 2, 4)):
            out[f"query.fc{i}.weight"] = model.query[layer].weight
            out[f"query.fc{i}.bias"] = model.query[layer].bias
    for i, layer in enumerate((0, 2)):
        out[f"core.fc{i}.weight"] = model.answer_mlp[layer].weight
        out[f"core.fc{i}.bias"] = model.answer_mlp[layer].bias
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        out[f"core.lstm.{name}"] = getattr(model.lstm, name)
    for head in ("policy", "baseline"):
        out[f"core.{head}.weight"] = getattr(model, head).weight
        out[f"core.{head}.bias"] = getattr(model, head).bias
    return {k: v.detach().contiguous() for k, v in out.items()}


class BoardMLP(torch.nn.Module):
    """A control for the loop itself (`--agent mlp`, not a model of the
    project): each cell's colour from the frame, two ReLU layers, the policy
    and baseline heads; no recurrence, no attention. If this learns catch
    quickly in the same loop, the loop, the loss and the optimizer are sound
    and what is slow is the attention agent."""

    def __init__(self, num_actions=3):
        super().__init__()
        self.baseline_agent = False
        self.body = torch.nn.Sequential(torch.nn.Linear(ROWS * COLS * 3, 128), torch.nn.ReLU(),
                                        torch.nn.Linear(128, 128), torch.nn.ReLU())
        self.policy = torch.nn.Linear(128, num_actions)
        self.baseline = torch.nn.Linear(128, 1)

    def forward(self, frame, reward, done, last_action, state):
        x = frame[:, :, CELL - 1::CELL, CELL - 1::CELL, :].float().flatten(2) / 255.0
        h = self.body(x)
        att = torch.full((*x.shape[:2], 1, ROWS, COLS), 1.0 / (ROWS * COLS))
        return {"policy_logits": self.policy(h), "baseline": self.baseline(h).squeeze(-1),
                "attention": att}, state

    def zero_state(self, batch):
        return ()


# --- V-trace and the loss (Espeholt et al. 2018, section 4.1) ------------------

def vtrace(log_rhos, discounts, rewards, values, bootstrap, lam=1.0):
    """Targets v_s and policy-gradient advantages, [T, B], no gradient;
    rho-bar = c-bar = rho-bar_pg = 1; c_i = lam * min(1, rho_i)."""
    with torch.no_grad():
        rhos = log_rhos.exp()
        clipped = rhos.clamp(max=1.0)
        next_values = torch.cat([values[1:], bootstrap[None]])
        deltas = clipped * (rewards + discounts * next_values - values)
        acc = torch.zeros_like(bootstrap)
        out = []
        for t in reversed(range(values.shape[0])):
            acc = deltas[t] + discounts[t] * lam * clipped[t] * acc
            out.append(acc)
        vs = torch.stack(out[::-1]) + values
        next_vs = torch.cat([vs[1:], bootstrap[None]])
        advantages = clipped * (rewards + discounts * next_vs - values)
    return vs, advantages


def impala_loss(out, batch, args):
    """Transition t uses action[t] and the logits at t, reward[t+1] and
    done[t+1]; the bootstrap is the baseline at step T."""
    logits = out["policy_logits"][:-1]
    values = out["baseline"][:-1]
    bootstrap = out["baseline"][-1].detach()
    actions = batch["action"][:-1]
    rewards = batch["reward"][1:].clamp(-1, 1)
    discounts = (~batch["done"][1:]).float() * args.discount
    log_pi = F.log_softmax(logits, -1)
    log_pi_a = log_pi.gather(2, actions[..., None]).squeeze(2)
    log_mu_a = F.log_softmax(batch["logits"][:-1], -1).gather(2, actions[..., None]).squeeze(2)
    vs, adv = vtrace(log_pi_a.detach() - log_mu_a, discounts, rewards, values.detach(), bootstrap,
                     args.vtrace_lambda)
    pg = -(log_pi_a * adv).sum()
    baseline = args.baseline_cost * 0.5 * ((vs - values) ** 2).sum()
    entropy = args.entropy_cost * (log_pi.exp() * log_pi).sum()
    return pg + baseline + entropy, (log_pi_a.detach() - log_mu_a)


def attention_measures(out, frames):
    """The policy's entropy, then per head the attention mass on the ball's
    cell, on the paddle's cell and the map's entropy (nats; uniform over the
    7x7 grid is 3.89), averaged over the batch's steps."""
    with torch.no_grad():
        logits = out["policy_logits"]
        log_pi = F.log_softmax(logits, -1)
        values = [-(log_pi.exp() * log_pi).sum(-1).mean().item()]
        att = out["attention"]  # [T, B, heads, 7, 7]
        cells = frames[:, :, ::CELL, ::CELL, :].long()  # each cell's top-left pixel
        ball = (cells == torch.from_numpy(BALL_RGB).long()).all(-1).float()
        # The paddle fills the lower half of its cell: read its bottom row of pixels.
        bottom = frames[:, :, -1, ::CELL, :].long()
        paddle = torch.zeros_like(ball)
        paddle[:, :, -1, :] = (bottom == torch.from_numpy(PADDLE_RGB).long()).all(-1).float()
        has_ball = ball.sum((-1, -2)) > 0
        for h in range(att.shape[2]):
            a = att[:, :, h]
            on_ball = (a * ball).sum((-1, -2))[has_ball].mean().item()
            on_paddle = (a * paddle).sum((-1, -2)).mean().item()
            entropy = -(a * a.clamp_min(1e-12).log()).sum((-1, -2)).mean().item()
            values += [on_ball, on_paddle, entropy]
    return values


# --- the loop ------------------------------------------------------------------

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", help="run directory (logs.csv, meta.json)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--total-frames", type=float, default=4e5)
    p.add_argument("--envs", type=int, default=8, help="environments = batch size B")
    p.add_argument("--unroll-length", type=int, default=20, help="T")
    p.add_argument("--balls", type=int, default=BALLS_PER_EPISODE,
                   help="balls per episode (the game's is 5; a diagnostic)")
    p.add_argument("--lag", type=int, default=2,
                   help="act with the weights of K updates ago (the demo's lag is 2; 0: "
                        "synchronous)")
    p.add_argument("--heads", type=int, default=4, help="attention heads (the small preset's)")
    p.add_argument("--agent", choices=["attention", "baseline", "mlp"], default="attention",
                   help="mlp: a feed-forward control over the cells, to check the loop itself")
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--constant-learning-rate", action="store_true",
                   help="hold the learning rate (default: linearly to 0 over --total-frames, as the "
                        "learner does without --constant-learning-rate)")
    p.add_argument("--warmup-frames", type=float, default=5e4,
                   help="raise the learning rate linearly from 0 over the first F frames "
                        "(the learner's --warmup-frames)")
    p.add_argument("--query-lr-scale", type=float, default=1.0,
                   help="the query network's learning rate relative to the rest (a diagnostic)")
    p.add_argument("--adam-eps", type=float, default=1e-5)
    p.add_argument("--grad-norm-clip", type=float, default=40.0)
    p.add_argument("--discount", type=float, default=0.9)
    p.add_argument("--vtrace-lambda", type=float, default=1.0)
    p.add_argument("--baseline-cost", type=float, default=0.5)
    p.add_argument("--entropy-cost", type=float, default=0.01)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--write-initial-weights", metavar="FILE",
                   help="write the initial weights (safetensors, the Rust names) to FILE and "
                        "stop: the tests compare them with the Rust learner's for the seed")
    p.add_argument("--check-game", action="store_true",
                   help="print the mean return of following the ball and of random play "
                        "(JSON) and stop: the tests compare them with common/env/src/catch.rs")
    args = p.parse_args(argv)
    if not (args.write_initial_weights or args.check_game or args.out):
        p.error("--out DIR is needed to train")
    return args


def build(args):
    """The learner's model and a second instance for acting, with the
    learner's weights; the config (for the logged heads)."""
    cfg = small_config(agent=args.agent, heads=args.heads)
    if args.agent == "mlp":
        torch.manual_seed(args.seed)
        make = BoardMLP
        cfg["heads"] = 1
    else:
        make = lambda: AttentionAgent(cfg)  # noqa: E731
    model = make()
    if args.agent != "mlp":
        initialise(model, args.seed)
    actor = make()
    actor.load_state_dict(model.state_dict())
    return model, actor, cfg


def check_game(seed, episodes=500):
    """Mean returns of following the ball and of uniformly random play."""
    # Not the game's seed: the actions must not repeat the game's draws.
    rng = np.random.default_rng([seed, 1])
    result = {}
    for name in ("follow", "random"):
        game = Catch(1, seed)
        returns = []
        while len(returns) < episodes:
            if name == "follow":
                action = np.sign(game.ball_col - game.paddle) + 1
            else:
                action = rng.integers(0, 3, 1)
            returns += game.step(action)[2]
        result[name] = float(np.mean(returns))
    return result


def learning_rate_at(args, frames):
    """The learner's schedule (learner/src/flags.rs): a linear warm-up over
    --warmup-frames, times (without --constant-learning-rate) a linear decay
    to 0 at --total-frames."""
    warmup = min(1.0, frames / args.warmup_frames) if args.warmup_frames > 0 else 1.0
    decay = 1.0 if args.constant_learning_rate else 1.0 - min(frames, args.total_frames) / args.total_frames
    return args.learning_rate * warmup * decay


def act(actor, game, carry, sampler, steps, T):
    """Steps the games until `steps` holds T+1 steps (step 0 repeats the last
    step of the previous unroll); returns the returns of finished episodes.
    `carry` is the actor's current input and recurrent state."""
    finished = []
    while len(steps) < T + 1:
        before = carry["state"]
        with torch.no_grad():
            out, carry["state"] = actor(carry["frame"][None], carry["reward"][None],
                                        carry["done"][None], carry["last_action"][None], before)
        logits = out["policy_logits"][0]
        action = torch.multinomial(F.softmax(logits, -1), 1, generator=sampler).squeeze(1)
        steps.append({"frame": carry["frame"], "reward": carry["reward"], "done": carry["done"],
                      "last_action": carry["last_action"], "action": action, "logits": logits,
                      "state_before": before})
        reward, done, ended = game.step(action.numpy())
        finished += ended
        carry.update(frame=torch.from_numpy(game.frames()), reward=torch.from_numpy(reward).float(),
                     done=torch.from_numpy(done), last_action=action)
    return finished


def train(args):
    model, actor, cfg = build(args)
    os.makedirs(args.out, exist_ok=True)
    query = [p for n, p in model.named_parameters() if n.startswith("query.")]
    rest = [p for n, p in model.named_parameters() if not n.startswith("query.")]
    groups = [{"params": rest, "scale": 1.0}]
    if query:
        groups.append({"params": query, "scale": args.query_lr_scale})
    opt = torch.optim.Adam(groups, lr=args.learning_rate, eps=args.adam_eps)
    # The weights of the last lag + 1 updates; the actor acts with the oldest.
    history = collections.deque([{k: v.clone() for k, v in model.state_dict().items()}],
                                maxlen=args.lag + 1)
    E, T = args.envs, args.unroll_length
    game = Catch(E, seed=args.seed, balls=args.balls)
    sampler = torch.Generator().manual_seed(args.seed)
    carry = {"frame": torch.from_numpy(game.frames()), "reward": torch.zeros(E),
             "done": torch.ones(E, dtype=torch.bool),
             "last_action": torch.zeros(E, dtype=torch.int64), "state": actor.zero_state(E)}
    steps = []
    frames_learned = updates = 0
    started = time.time()
    with open(os.path.join(args.out, "logs.csv"), "w", newline="") as log:
        writer = csv.writer(log)
        writer.writerow(["update", "frames", "episodes", "mean_episode_return", "loss",
                         "grad_norm", "mean_abs_log_rho", "policy_entropy"]
                        + [f"head{h}_{m}" for h in range(cfg["heads"])
                           for m in ("ball", "paddle", "entropy")]
                        + ["seconds"])
        while frames_learned < args.total_frames:
            returns = act(actor, game, carry, sampler, steps, T)
            batch = {k: torch.stack([s[k] for s in steps]) for k in steps[0]
                     if k != "state_before"}
            out, _ = model(batch["frame"], batch["reward"], batch["done"], batch["last_action"],
                           steps[0]["state_before"])
            loss, log_rhos = impala_loss(out, batch, args)
            for group in opt.param_groups:
                group["lr"] = learning_rate_at(args, frames_learned) * group["scale"]
            opt.zero_grad()
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_norm_clip)
            opt.step()
            updates += 1
            frames_learned += T * E
            history.append({k: v.clone() for k, v in model.state_dict().items()})
            actor.load_state_dict(history[0])
            # The next unroll starts from this one's last step and the state before it.
            steps = steps[-1:]
            writer.writerow([updates, frames_learned, len(returns),
                             f"{np.mean(returns):.4f}" if returns else "nan",
                             f"{loss.item():.4f}", f"{float(grad_norm):.3f}",
                             f"{log_rhos.abs().mean().item():.5f}"]
                            + [f"{x:.4f}" for x in attention_measures(out, batch["frame"])]
                            + [f"{time.time() - started:.1f}"])
            if updates % 100 == 0:
                log.flush()
                print(f"update {updates} frames {frames_learned} return "
                      f"{np.mean(returns) if returns else float('nan'):.2f}", flush=True)
    with open(os.path.join(args.out, "meta.json"), "w") as f:
        json.dump({"peer": "scripts/python/peer_vtrace.py", "args": vars(args),
                   "config": {"precision_resolved": "fp32", "model": cfg},
                   "final_counters": {"train_seconds": time.time() - started}}, f, indent=1)


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    if args.check_game:
        print(json.dumps(check_game(args.seed)))
    elif args.write_initial_weights:
        from safetensors.torch import save_file
        save_file(rust_named(build(args)[0]), args.write_initial_weights)
    else:
        train(args)


if __name__ == "__main__":
    main()
