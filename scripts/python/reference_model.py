#!/usr/bin/env python3
"""Plain PyTorch reference of the attention agent (Mott et al. 2019; docs/architecture.md).

An independent implementation of the model in common/agent/src/model/, written the
way a researcher would write it in PyTorch, read top to bottom: it exists so
the Rust model can be checked against it (common/agent/src/model tests) and timed
against it (common/agent/benches/model.rs). It reads the weights and the model config
from the safetensors bytes the Rust model writes (`Model::to_safetensors`).

Deliberately independent of the Rust code's factorisation: keys and values are
built explicitly as [B, h*w, C + C_s] by permute and concatenation with the
spatial basis; logits and answers are einsums over those.

Usage:
  reference_model.py forward --weights W --inputs I --outputs O [--threads N]
      inputs (safetensors): frame u8 [T,B,H,W,C], reward f32 [T,B], done u8 [T,B],
      last_action i64 [T,B], vision_h, vision_c, core_h, core_c (the initial state).
      outputs (safetensors): policy_logits, baseline, attention, attention_content,
      attention_place, and the final state as final_vision_h, ...
  reference_model.py bench --weights W [--threads N] [--seconds S] [--only inference|training]
      [--precision fp32|bf16] [--device cpu|cuda]
      prints one JSON line: inference steps/s (E = 8, T = 1, no grad) and training
      samples/s (T = 20, B = 8, forward + backward + RMSProp).
"""

import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file, save_file


def spatial_basis(h, w, n):
    """[h*w, 4 n^2]: channel ((u-1)*n + (v-1))*4 + 2a + b = f_a(pi u i/h) f_b(pi v j/w)."""
    i = torch.arange(h, dtype=torch.float64)
    j = torch.arange(w, dtype=torch.float64)
    channels = []
    for u in range(1, n + 1):
        for v in range(1, n + 1):
            for fa in (torch.cos, torch.sin):
                for fb in (torch.cos, torch.sin):
                    rows = fa(math.pi * u * i / h)  # [h]
                    cols = fb(math.pi * v * j / w)  # [w]
                    channels.append(torch.outer(rows, cols).reshape(h * w))
    return torch.stack(channels, dim=1).float()


def conv_out(size, kernel, stride, pad):
    return (size + 2 * pad - kernel) // stride + 1


class AttentionAgent(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        h, w = cfg["height"], cfg["width"]
        c_in = cfg["in_channels"]
        self.convs = nn.ModuleList()
        for spec in cfg["convs"]:
            self.convs.append(
                nn.Conv2d(c_in, spec["out_channels"], spec["kernel"], spec["stride"],
                          padding=tuple(spec["padding"])))
            c_in = spec["out_channels"]
            h = conv_out(h, spec["kernel"], spec["stride"], spec["padding"][0])
            w = conv_out(w, spec["kernel"], spec["stride"], spec["padding"][1])
        self.grid = (h, w)
        C = cfg["convlstm_channels"]
        k = cfg["convlstm_kernel"]
        # ConvLSTM: gates (i, f, g, o) = conv([x, h]).
        self.convlstm = nn.Conv2d(c_in + C, 4 * C, k, padding=k // 2)
        self.C = C
        self.C_k = cfg["key_channels"]
        self.C_v = C - self.C_k
        n = cfg["basis_frequencies"]
        self.C_s = 4 * n * n
        self.register_buffer("basis", spatial_basis(h, w, n))
        self.heads = cfg["heads"]
        q_width = self.C_k + self.C_s
        self.q_width = q_width
        # "attention_logits": "scaled_dot" divides q . k by sqrt(C_k + C_s);
        # "scaled_per_part" the content part by sqrt(C_k), the place part by
        # sqrt(C_s).
        logits_kind = cfg.get("attention_logits", "dot")
        self.content_divisor, self.place_divisor = {
            "dot": (1.0, 1.0),
            "scaled_dot": (math.sqrt(q_width), math.sqrt(q_width)),
            "scaled_per_part": (math.sqrt(self.C_k), math.sqrt(self.C_s)),
        }[logits_kind]
        # "normalize_keys": each key channel standardised over the grid.
        self.normalize_keys = cfg.get("normalize_keys", False)
        # The no-attention control (config "agent": "baseline"): the grid
        # pooled against [1, basis], one linear layer to the answers.
        self.baseline_agent = cfg.get("agent", "attention") == "baseline"
        if self.baseline_agent:
            self.pool = nn.Linear(C * (1 + self.C_s), self.heads * (self.C_v + self.C_s))
        self.query = nn.Sequential(
            nn.Linear(cfg["core_units"], cfg["query_hidden"]), nn.ReLU(),
            nn.Linear(cfg["query_hidden"], self.heads * q_width), nn.ReLU(),
            nn.Linear(self.heads * q_width, self.heads * q_width))
        A = cfg["num_actions"]
        self.num_actions = A
        core_in = self.heads * (self.C_v + self.C_s) + self.heads * q_width + 1 + A
        m0, m1 = cfg["answer_mlp"]
        self.answer_mlp = nn.Sequential(nn.Linear(core_in, m0), nn.ReLU(), nn.Linear(m0, m1),
                                        nn.ReLU())
        self.lstm = nn.LSTMCell(m1, cfg["core_units"])
        self.policy = nn.Linear(cfg["core_units"], A)
        self.baseline = nn.Linear(cfg["core_units"], 1)

    def load_rust_weights(self, tensors):
        """Maps the Rust var-store names onto this module's parameters."""
        sd = {}
        for i in range(len(self.convs)):
            sd[f"convs.{i}.weight"] = tensors[f"vision.conv{i}.weight"]
            sd[f"convs.{i}.bias"] = tensors[f"vision.conv{i}.bias"]
        sd["convlstm.weight"] = tensors["vision.convlstm.weight"]
        sd["convlstm.bias"] = tensors["vision.convlstm.bias"]
        if self.baseline_agent:
            sd["pool.weight"] = tensors["pool.weight"]
            sd["pool.bias"] = tensors["pool.bias"]
            # The control has no query network; keep this module's own.
            sd.update({f"query.{k}": v for k, v in self.query.state_dict().items()})
        else:
            for i, layer in enumerate([0, 2, 4]):
                sd[f"query.{layer}.weight"] = tensors[f"query.fc{i}.weight"]
                sd[f"query.{layer}.bias"] = tensors[f"query.fc{i}.bias"]
        for i, layer in enumerate([0, 2]):
            sd[f"answer_mlp.{layer}.weight"] = tensors[f"core.fc{i}.weight"]
            sd[f"answer_mlp.{layer}.bias"] = tensors[f"core.fc{i}.bias"]
        for name in ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]:
            sd[f"lstm.{name}"] = tensors[f"core.lstm.{name}"]
        for head in ["policy", "baseline"]:
            sd[f"{head}.weight"] = tensors[f"core.{head}.weight"]
            sd[f"{head}.bias"] = tensors[f"core.{head}.bias"]
        sd["basis"] = self.basis
        self.load_state_dict(sd, strict=True)

    def forward(self, frame, reward, done, last_action, state):
        """frame u8 [T,B,H,W,C], reward f32 [T,B], done bool [T,B], last_action i64 [T,B]."""
        T, B = reward.shape
        vh, vc, ch, cc = state
        h, w = self.grid
        out = {k: [] for k in ["policy_logits", "baseline", "attention", "attention_content",
                               "attention_place"]}
        # Convolutions over all T*B frames at once, as TorchBeast models do.
        x = frame.flatten(0, 1).permute(0, 3, 1, 2).float() / 255.0
        for conv in self.convs:
            x = F.relu(conv(x))
        x = x.view(T, B, *x.shape[1:])
        for t in range(T):
            keep = (~done[t]).float()
            vh = vh * keep[:, None, None, None]
            vc = vc * keep[:, None, None, None]
            ch = ch * keep[:, None]
            cc = cc * keep[:, None]
            gates = self.convlstm(torch.cat([x[t], vh], dim=1))
            i, f, g, o = gates.chunk(4, dim=1)
            vc = torch.sigmoid(f) * vc + torch.sigmoid(i) * torch.tanh(g)
            vh = torch.sigmoid(o) * torch.tanh(vc)
            if self.baseline_agent:
                # Every channel averaged over the grid against [1, basis].
                weights = torch.cat([torch.ones(h * w, 1), self.basis], dim=1)
                pooled = torch.einsum("bcp,ps->bcs", vh.reshape(B, self.C, h * w), weights) / (h * w)
                answers = self.pool(pooled.reshape(B, -1)).view(B, self.heads, self.C_v + self.C_s)
                Q = torch.zeros(B, self.heads, self.q_width)
                A = torch.full((B, self.heads, h * w), 1.0 / (h * w))
                content = torch.zeros(B, self.heads, h * w)
                place = torch.zeros(B, self.heads, h * w)
            else:
                answers, Q, A, content, place = self.attend(vh, ch)
            core_in = torch.cat([
                answers.reshape(B, -1), Q.reshape(B, -1),
                reward[t].clamp(-1, 1).unsqueeze(1),
                F.one_hot(last_action[t], self.num_actions).float()], dim=1)
            ch, cc = self.lstm(self.answer_mlp(core_in), (ch, cc))
            out["policy_logits"].append(self.policy(ch))
            out["baseline"].append(self.baseline(ch).squeeze(1))
            out["attention"].append(A.view(B, self.heads, h, w))
            out["attention_content"].append(content.view(B, self.heads, h, w))
            out["attention_place"].append(place.view(B, self.heads, h, w))
        out = {k: torch.stack(v) for k, v in out.items()}
        return out, (vh, vc, ch, cc)

    def attend(self, vh, ch):
        """Answers, queries, attention and its two logit parts for one step."""
        B = vh.shape[0]
        h, w = self.grid
        # Keys and values [B, h*w, C + C_s] with the spatial basis.
        pos = vh.permute(0, 2, 3, 1).reshape(B, h * w, self.C)
        basis = self.basis.unsqueeze(0).expand(B, -1, -1)
        keys = pos[:, :, :self.C_k]
        if self.normalize_keys:
            keys = F.instance_norm(keys.transpose(1, 2), eps=1e-5).transpose(1, 2)
        K = torch.cat([keys, basis], dim=2)
        V = torch.cat([pos[:, :, self.C_k:], basis], dim=2)
        # Queries from the core's previous state, after its done-reset.
        Q = self.query(ch).view(B, self.heads, self.C_k + self.C_s)
        content = torch.einsum("bnc,bpc->bnp", Q[:, :, :self.C_k], K[:, :, :self.C_k]) / self.content_divisor
        place = torch.einsum("bnc,bpc->bnp", Q[:, :, self.C_k:], K[:, :, self.C_k:]) / self.place_divisor
        A = F.softmax(content + place, dim=2)
        answers = torch.einsum("bnp,bpc->bnc", A, V)
        return answers, Q, A, content, place

    def zero_state(self, B):
        h, w = self.grid
        return (torch.zeros(B, self.C, h, w), torch.zeros(B, self.C, h, w),
                torch.zeros(B, self.cfg["core_units"]), torch.zeros(B, self.cfg["core_units"]))


def load_model(path):
    with safe_open(path, framework="pt") as f:
        cfg = json.loads(f.metadata()["attention_agent"])["config"]
    model = AttentionAgent(cfg)
    model.load_rust_weights(load_file(path))
    return model


def cmd_forward(args):
    model = load_model(args.weights)
    x = load_file(args.inputs)
    state = (x["vision_h"], x["vision_c"], x["core_h"], x["core_c"])
    with torch.no_grad():
        out, final = model(x["frame"], x["reward"], x["done"].bool(), x["last_action"], state)
    for name, t in zip(["vision_h", "vision_c", "core_h", "core_c"], final):
        out["final_" + name] = t
    save_file({k: v.contiguous() for k, v in out.items()}, args.outputs)


def random_unroll(cfg, T, B, gen):
    frame = torch.randint(0, 256, (T, B, cfg["height"], cfg["width"], cfg["in_channels"]),
                          dtype=torch.uint8, generator=gen)
    reward = torch.randn(T, B, generator=gen)
    done = torch.rand(T, B, generator=gen) < 0.05
    last_action = torch.randint(0, cfg["num_actions"], (T, B), generator=gen)
    return frame, reward, done, last_action


def timed(fn, seconds):
    """Runs fn once to warm up, then until `seconds` pass; returns calls per
    wall-clock second and per CPU second of this process."""
    fn()
    n, start, cpu_start = 0, time.perf_counter(), time.process_time()
    while True:
        fn()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n / elapsed, n / max(time.process_time() - cpu_start, 1e-9)


def cmd_bench(args):
    device = torch.device(args.device)
    model = load_model(args.weights).to(device)
    cfg = model.cfg
    gen = torch.Generator().manual_seed(0)
    result = {"threads": torch.get_num_threads(), "torch": torch.__version__,
              "device": str(device), "precision": args.precision}
    # bf16: plain PyTorch's way, autocast (convolutions, matmuls and linear
    # layers in bfloat16 on float32 weights).
    autocast = lambda: torch.autocast(device.type, dtype=torch.bfloat16,
                                      enabled=args.precision == "bf16")
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)

    if args.only in (None, "inference"):
        E = args.envs
        frame, reward, done, last_action = (x.to(device) for x in random_unroll(cfg, 1, E, gen))
        state = tuple(s.to(device) for s in model.zero_state(E))

        def infer():
            nonlocal state
            with torch.no_grad(), autocast():
                _, state = model(frame, reward, done, last_action, state)
            state = tuple(s.float() for s in state)
            sync()

        wall, cpu = timed(infer, args.seconds)
        result["inference_steps_per_s"] = wall * E
        result["inference_steps_per_s_cpu"] = cpu * E

    if args.only in (None, "training"):
        T, B = args.unroll, args.batch
        frame, reward, done, last_action = (x.to(device) for x in random_unroll(cfg, T, B, gen))
        actions = torch.randint(0, cfg["num_actions"], (T, B), generator=gen).to(device)
        advantages = torch.randn(T, B, generator=gen).to(device)
        targets = torch.randn(T, B, generator=gen).to(device)
        opt = torch.optim.RMSprop(model.parameters(), lr=6e-4, alpha=0.99, eps=0.01)
        init = tuple(s.to(device) for s in model.zero_state(B))

        def train():
            with autocast():
                out, _ = model(frame, reward, done, last_action, init)
            out = {k: v.float() for k, v in out.items()}
            loss = training_loss(out, actions, advantages, targets)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sync()

        wall, cpu = timed(train, args.seconds)
        result["training_samples_per_s"] = wall * T * B
        result["training_samples_per_s_cpu"] = cpu * T * B
    print(json.dumps(result))


def training_loss(out, actions, advantages, targets):
    """The learner's loss shape on fixed advantages and targets.

    See docs/architecture.md, V-trace and the loss.
    """
    log_pi = F.log_softmax(out["policy_logits"], dim=-1)
    pg = -(log_pi.gather(2, actions.unsqueeze(2)).squeeze(2) * advantages).sum()
    baseline = 0.5 * 0.5 * ((targets - out["baseline"]) ** 2).sum()
    entropy = 0.01 * (log_pi.exp() * log_pi).sum()
    return pg + baseline + entropy


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("forward", help="run an unroll and write the outputs")
    f.add_argument("--weights", required=True)
    f.add_argument("--inputs", required=True)
    f.add_argument("--outputs", required=True)
    f.add_argument("--threads", type=int, default=2)
    b = sub.add_parser("bench", help="time inference and training")
    b.add_argument("--weights", required=True)
    b.add_argument("--threads", type=int, default=2)
    b.add_argument("--seconds", type=float, default=5.0)
    b.add_argument("--envs", type=int, default=8)
    b.add_argument("--unroll", type=int, default=20)
    b.add_argument("--batch", type=int, default=8)
    b.add_argument("--only", choices=["inference", "training"], help="time one of the two")
    b.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                   help="bf16: torch.autocast to bfloat16")
    b.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    {"forward": cmd_forward, "bench": cmd_bench}[args.cmd](args)


if __name__ == "__main__":
    main()
