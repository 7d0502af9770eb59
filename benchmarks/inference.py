"""Draft-generation throughput of a Janus-Pro-1B-sized model: image + prompt -> N new tokens.

    python benchmarks/inference.py                       # GPU: full-size random model; CPU: tiny model (--tiny)
    python benchmarks/inference.py --batch-sizes 1 8 32 --new-tokens 200 --repeats 3
    python benchmarks/inference.py --static-cache        # StaticCache, no compilation
    python benchmarks/inference.py --compile             # StaticCache + torch.compile (transformers' auto-compile)
    python benchmarks/inference.py --all-modes           # eager / static / static+compile, one table each
    python benchmarks/inference.py --json out.json

The model has the real Janus-Pro-1B architecture (numbers below, from deepseek-ai/Janus-Pro-1B's config.json as
converted by transformers' ``convert_janus_weights_to_hf.py``) with *random* weights: nothing is downloaded, and
the timing of a transformer does not depend on its weight values. Generation is forced to exactly
``--new-tokens`` tokens (``min_new_tokens``), greedy. Inputs are random token ids around the 576 image
placeholders and a random 384 x 384 image, so the prefill length matches a real draft request
(``--prompt-tokens`` text tokens + 578 image tokens).

Prints per batch size: latency p50/p95 of one ``generate`` call, time to first token (prefill), decode
tokens/s (all sequences), reports/s, reports/s over batch 1's (batch 1 = the worker without batching); and on
a GPU the memory-bandwidth floor: bytes that must be read per decode
step (language-model weights + lm_head, and the KV cache at the mean context) divided by the bandwidth
(measured with a device-to-device copy; the nominal figure of known GPUs is shown beside it).

On a CPU the full-size model would take minutes per report, so ``--tiny`` is switched on automatically (and
said so): the tiny random model of :mod:`inference.tiny`, useful only to check that the script runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Janus-Pro-1B (deepseek-ai/Janus-Pro-1B config.json; language model = DeepSeek-LLM-1.5B-style Llama)
JANUS_PRO_1B_TEXT = {
    "vocab_size": 102400,
    "hidden_size": 2048,
    "intermediate_size": 5632,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "num_key_value_heads": 16,
    "hidden_act": "silu",
    "max_position_embeddings": 16384,
    "rms_norm_eps": 1e-6,
    "rope_theta": 10000.0,
    "tie_word_embeddings": False,  # Janus-Pro has a separate lm_head
    "bos_token_id": 100000,
    "eos_token_id": 100001,
    "pad_token_id": 100015,
}
# SigLIP-L/16 at 384 px (24 layers, width 1024, 16 heads, MLP 4096) -> 576 image tokens; 2-layer GELU aligner
JANUS_PRO_1B_VISION = {
    "hidden_size": 1024,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "image_size": 384,
    "patch_size": 16,
    "mlp_ratio": 4.0,
    "projection_dim": 2048,
    "depth": 2,
    "num_image_tokens": 576,
}
# LlamaGen VQ-16 tokenizer used for image *generation* (not used for reports, but part of the weights)
JANUS_PRO_1B_VQ = {
    "embed_dim": 8,
    "num_embeddings": 16384,
    "projection_dim": 2048,
    "image_token_embed_dim": 2048,
}
JANUS_PRO_1B_IMAGE_TOKEN_ID = 100581

# Nominal HBM/GDDR bandwidth in GB/s by device-name substring (first match wins).
NOMINAL_BANDWIDTH_GBS = [
    ("H200", 4800.0),
    ("H100 PCIe", 2000.0),
    ("H100 NVL", 3900.0),
    ("H100", 3350.0),
    ("GH200", 4000.0),
    ("B200", 8000.0),
    ("A100-SXM4-80GB", 2039.0),
    ("A100 80GB PCIe", 1935.0),
    ("A100", 1555.0),
    ("L40S", 864.0),
    ("L4", 300.0),
    ("A10G", 600.0),
    ("RTX 4090", 1008.0),
    ("RTX 4060", 272.0),
    ("RTX 3060", 360.0),
    ("T4", 320.0),
    ("V100", 900.0),
]


def full_config():
    from transformers import JanusConfig, JanusVisionConfig, JanusVQVAEConfig, LlamaConfig

    return JanusConfig(
        text_config=LlamaConfig(**JANUS_PRO_1B_TEXT),
        vision_config=JanusVisionConfig(**JANUS_PRO_1B_VISION),
        vq_config=JanusVQVAEConfig(**JANUS_PRO_1B_VQ),
        image_token_id=JANUS_PRO_1B_IMAGE_TOKEN_ID,
        tie_word_embeddings=False,
    )


def tiny_config():
    from inference.tiny import build_tiny_tokenizer, tiny_janus_config

    return tiny_janus_config(build_tiny_tokenizer())


def build_model(config, device: str, dtype, attn: str):
    import torch
    from transformers import JanusForConditionalGeneration

    torch.manual_seed(0)
    with torch.device(device):
        model = JanusForConditionalGeneration._from_config(config, dtype=dtype, attn_implementation=attn)
    return model.eval()


def make_inputs(config, batch: int, prompt_tokens: int, device: str, dtype) -> dict[str, Any]:
    import torch

    gen = torch.Generator().manual_seed(batch)
    vocab = config.text_config.vocab_size
    n_image = config.vision_config.num_image_tokens
    # ordinary text ids: DeepSeek's special tokens sit at >= 100000, the tiny tokenizer's at < 16
    low, high = (16, vocab) if vocab < 1000 else (1000, min(vocab, 100000))
    text = torch.randint(low, high, (batch, prompt_tokens), generator=gen)
    text[text == config.image_token_id] = low
    head, tail = text[:, : prompt_tokens // 4], text[:, prompt_tokens // 4 :]
    image = torch.full((batch, n_image), config.image_token_id)
    input_ids = torch.cat([head, image, tail], dim=1)
    size = config.vision_config.image_size
    pixel_values = torch.randn(batch, 3, size, size, generator=gen)
    return {
        "input_ids": input_ids.to(device),
        "attention_mask": torch.ones_like(input_ids).to(device),
        "pixel_values": pixel_values.to(device=device, dtype=dtype),
    }


def lm_bytes_per_step(model) -> int:
    """Bytes of the weights read at every decode step: the language model's layers, final norm and lm_head
    (the vision tower, aligner and VQ model run only in the prefill or never)."""
    lm = model.model.language_model
    total = sum(
        p.numel() * p.element_size() for name, p in lm.named_parameters() if "embed_tokens" not in name
    )
    total += sum(p.numel() * p.element_size() for p in model.lm_head.parameters())
    return total


def measured_bandwidth_gbs(device: str) -> float | None:
    import torch

    if not device.startswith("cuda"):
        return None
    n = 1 << 28  # 256 Mi float32 = 1 GiB
    src = torch.empty(n, dtype=torch.float32, device=device).fill_(1.0)
    dst = torch.empty_like(src)
    for _ in range(3):
        dst.copy_(src)
    torch.cuda.synchronize()
    reps = 10
    start = time.perf_counter()
    for _ in range(reps):
        dst.copy_(src)
    torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    del src, dst
    torch.cuda.empty_cache()
    return 2 * n * 4 * reps / elapsed / 1e9  # read + write


def nominal_bandwidth_gbs(name: str) -> float | None:
    for key, value in NOMINAL_BANDWIDTH_GBS:
        if key.lower() in name.lower():
            return value
    return None


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q
    lo, hi = int(pos), min(int(pos) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def run_mode(
    model, config, args, device: str, dtype, mode: str, bandwidth: dict[str, float | None]
) -> list[dict]:
    import torch

    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    static = mode in ("static", "static+compile")
    gen_kwargs: dict[str, Any] = {
        "do_sample": False,
        "pad_token_id": config.text_config.pad_token_id,
        "eos_token_id": config.text_config.eos_token_id,
    }
    if static:
        gen_kwargs["cache_implementation"] = "static"
        gen_kwargs["disable_compile"] = mode != "static+compile"
        if mode == "static+compile" and not device.startswith("cuda"):
            from transformers import CompileConfig

            compile_config = CompileConfig()
            compile_config._compile_all_devices = True  # transformers only auto-compiles on accelerators
            gen_kwargs["compile_config"] = compile_config
    else:
        gen_kwargs["disable_compile"] = True

    def prefill(inputs) -> float:
        """Time to first token: one forward pass over the prompt and image (the same in every mode)."""
        sync()
        start = time.perf_counter()
        with torch.inference_mode():
            model(**inputs, use_cache=True, logits_to_keep=1)
        sync()
        return time.perf_counter() - start

    def generate(inputs, n_new: int) -> float:
        sync()
        start = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(**inputs, max_new_tokens=n_new, min_new_tokens=n_new, **gen_kwargs)
        sync()
        elapsed = time.perf_counter() - start
        assert out.shape[1] == inputs["input_ids"].shape[1] + n_new, out.shape
        return elapsed

    rows = []
    lm_bytes = lm_bytes_per_step(model)
    text = config.text_config
    head_dim = text.hidden_size // text.num_attention_heads
    for batch in args.batch_sizes:
        try:
            inputs = make_inputs(config, batch, args.prompt_tokens, device, dtype)
            warmup = max(args.warmup, 2) if mode == "static+compile" else args.warmup  # compile + CUDA graphs
            for _ in range(warmup):
                generate(inputs, args.new_tokens)
            prefill(inputs)
            ttft = [prefill(inputs) for _ in range(max(1, args.repeats))]
            latencies = [generate(inputs, args.new_tokens) for _ in range(args.repeats)]
        except torch.OutOfMemoryError:
            print(f"  batch {batch}: out of memory, skipped", flush=True)
            torch.cuda.empty_cache()
            continue
        p50, p95 = percentile(latencies, 0.5), percentile(latencies, 0.95)
        prefill_s = statistics.median(ttft)
        decode_s = max(p50 - prefill_s, 1e-9)
        ctx = inputs["input_ids"].shape[1] + args.new_tokens / 2
        kv_bytes = (
            2
            * text.num_hidden_layers
            * text.num_key_value_heads
            * head_dim
            * ctx
            * batch
            * model.dtype.itemsize
        )
        row = {
            "mode": mode,
            "batch": batch,
            "prompt_len": int(inputs["input_ids"].shape[1]),
            "new_tokens": args.new_tokens,
            "latency_p50_s": p50,
            "latency_p95_s": p95,
            "ttft_s": prefill_s,
            "decode_ms_per_step": decode_s / max(args.new_tokens - 1, 1) * 1e3,
            "tokens_per_s": batch * args.new_tokens / p50,
            "reports_per_s": batch / p50,
            "s_per_report": p50 / batch,
            "lm_weight_bytes_per_step": lm_bytes,
            "kv_bytes_per_step": int(kv_bytes),
        }
        bw = bandwidth.get("measured_gbs") or bandwidth.get("nominal_gbs")
        if bw:
            floor_step = (lm_bytes + kv_bytes) / (bw * 1e9)
            row["floor_ms_per_step"] = floor_step * 1e3
            row["floor_s_per_generate"] = floor_step * args.new_tokens
            row["fraction_of_floor"] = row["floor_ms_per_step"] / row["decode_ms_per_step"]
        rows.append(row)
        print(
            f"  [{mode}] batch {batch:>3}: p50 {p50:.3f}s p95 {p95:.3f}s ttft {prefill_s:.3f}s "
            f"{row['tokens_per_s']:.0f} tok/s {row['reports_per_s']:.2f} reports/s",
            flush=True,
        )
        del inputs
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    return rows


def with_batching_gain(rows: list[dict]) -> list[dict]:
    """Reports/s of each batch size over batch 1's (one mode): what dynamic batching gains over generating the
    same drafts one by one (batch 1 is the worker without batching)."""
    single = next((r["reports_per_s"] for r in rows if r["batch"] == 1), None)
    for r in rows:
        if single:
            r["batching_gain"] = r["reports_per_s"] / single
    return rows


def print_table(rows: list[dict], gpu: bool) -> None:
    cols = [
        ("mode", "mode", "{}"),
        ("batch", "batch", "{}"),
        ("prompt_len", "prompt", "{}"),
        ("latency_p50_s", "p50 s", "{:.3f}"),
        ("latency_p95_s", "p95 s", "{:.3f}"),
        ("ttft_s", "TTFT s", "{:.3f}"),
        ("decode_ms_per_step", "ms/step", "{:.2f}"),
        ("tokens_per_s", "tok/s", "{:.0f}"),
        ("reports_per_s", "reports/s", "{:.2f}"),
        ("s_per_report", "s/report", "{:.3f}"),
        ("batching_gain", "x batch 1", "{:.2f}"),
    ]
    if gpu:
        cols += [
            ("floor_ms_per_step", "floor ms/step", "{:.2f}"),
            ("fraction_of_floor", "of floor", "{:.0%}"),
        ]
    cells = [[fmt.format(r[key]) if key in r else "-" for key, _, fmt in cols] for r in rows]
    widths = [
        max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, (_, h, _) in enumerate(cols)
    ]
    print(" | ".join(h.rjust(w) for (_, h, _), w in zip(cols, widths, strict=True)))
    print("-+-".join("-" * w for w in widths))
    for c in cells:
        print(" | ".join(v.rjust(w) for v, w in zip(c, widths, strict=True)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--new-tokens", type=int, default=200)
    parser.add_argument("--prompt-tokens", type=int, default=150, help="text tokens around the image tokens")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto", help="auto: bfloat16 on CUDA, float32 on CPU")
    parser.add_argument(
        "--attn", default="sdpa", help="attention implementation (sdpa, eager, flash_attention_2)"
    )
    parser.add_argument("--tiny", action="store_true", help="the tiny random model (automatic on CPU)")
    parser.add_argument("--full", action="store_true", help="the full-size model even on CPU (slow)")
    parser.add_argument("--static-cache", action="store_true", help="StaticCache without compilation")
    parser.add_argument(
        "--compile", action="store_true", help="StaticCache + torch.compile (implies --static-cache)"
    )
    parser.add_argument("--all-modes", action="store_true", help="eager, static and static+compile in turn")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)

    import torch
    import transformers

    from inference.backends.base import resolve_device, resolve_dtype_name
    from inference.backends.janus import silence_generate_noise

    silence_generate_noise()

    device = resolve_device(args.device)
    gpu = device.startswith("cuda")
    dtype = getattr(torch, resolve_dtype_name(device, args.dtype))
    tiny = args.tiny or (not gpu and not args.full)
    if tiny and not args.tiny:
        print(
            "No CUDA device: using the TINY random model (--tiny); the numbers say nothing about Janus-Pro-1B."
        )
    config = tiny_config() if tiny else full_config()
    if gpu:
        torch.backends.cuda.matmul.allow_tf32 = True
    device_name = torch.cuda.get_device_name(device) if gpu else platform.processor() or platform.machine()
    print(
        f"device: {device} ({device_name}), dtype {dtype}, torch {torch.__version__}, "
        f"transformers {transformers.__version__}, model: {'tiny' if tiny else 'Janus-Pro-1B architecture'} "
        "(random weights)",
        flush=True,
    )

    start = time.perf_counter()
    model = build_model(config, device, dtype, args.attn)
    n_params = sum(p.numel() for p in model.parameters())
    n_lm = sum(p.numel() for p in model.model.language_model.parameters()) + model.lm_head.weight.numel()
    print(
        f"built in {time.perf_counter() - start:.1f}s: {n_params / 1e6:,.1f} M parameters "
        f"({n_lm / 1e6:,.1f} M language model incl. embeddings and lm_head)",
        flush=True,
    )

    bandwidth: dict[str, float | None] = {"measured_gbs": None, "nominal_gbs": None}
    if gpu:
        bandwidth["nominal_gbs"] = nominal_bandwidth_gbs(device_name)
        bandwidth["measured_gbs"] = measured_bandwidth_gbs(device)
        lm_bytes = lm_bytes_per_step(model)
        print(
            f"memory bandwidth: measured {bandwidth['measured_gbs']:.0f} GB/s (device copy), nominal "
            f"{bandwidth['nominal_gbs'] or 'unknown'} GB/s; weights read per decode step {lm_bytes / 1e9:.2f} GB -> "
            f"floor {lm_bytes / (bandwidth['measured_gbs'] * 1e9) * 1e3:.2f} ms/step, "
            f"{lm_bytes / (bandwidth['measured_gbs'] * 1e9) * args.new_tokens:.3f} s per {args.new_tokens}-token "
            "report at batch 1 (+ KV cache reads, growing with batch)",
            flush=True,
        )

    if args.all_modes:
        modes = ["eager", "static", "static+compile"]
    elif args.compile:
        modes = ["static+compile"]
    elif args.static_cache:
        modes = ["static"]
    else:
        modes = ["eager"]
    rows: list[dict] = []
    for mode in modes:
        rows += with_batching_gain(run_mode(model, config, args, device, dtype, mode, bandwidth))
    print()
    print_table(rows, gpu)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "device": device,
                    "device_name": device_name,
                    "dtype": str(dtype),
                    "tiny": tiny,
                    "torch": torch.__version__,
                    "transformers": transformers.__version__,
                    "parameters": n_params,
                    "bandwidth": bandwidth,
                    "args": {k: str(v) for k, v in vars(args).items()},
                    "rows": rows,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
