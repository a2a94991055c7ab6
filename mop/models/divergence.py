"""Divergences between next-token distributions, shared by path selection (`--path kl`) and
distillation (`finetune.py --objective kd`).

Both compare a model with the dense original. Keeping the original's whole distribution is
costly (a (positions, vocabulary) tensor), so both can keep only its `k` most likely tokens and
their log-probabilities plus the log of the mass outside them (the "tail"), and compare on those
k + 1 buckets: `coarse_kl`. With the full distribution, `full_kl` is the exact KL.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def mass_outside(logprobs: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """log of the probability outside `indices` per row: (P, V), (P, k) -> (P,)."""
    return logprobs.scatter(-1, indices, float("-inf")).logsumexp(-1)


def top_k_targets(logprobs: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """What a reference keeps of a distribution: top-k log-probs (P, k), their token ids (P, k)
    and the log of the remaining mass (P,)."""
    values, indices = logprobs.topk(min(k, logprobs.shape[-1]), dim=-1)
    return values, indices, mass_outside(logprobs, indices)


def coarse_kl(cand: torch.Tensor, top: torch.Tensor, idx: torch.Tensor, rest: torch.Tensor) -> torch.Tensor:
    """KL(p || q) per row over the reference's top-k tokens plus one bucket for all the others.

    cand: the candidate's log-probs (P, V); top, idx: the original's top-k log-probs and token
    ids (P, k); rest: log of the original's mass outside them (P,). A tail of probability 0
    (log -inf) contributes 0, not NaN.
    """
    kl = (top.exp() * (top - cand.gather(-1, idx))).sum(-1)
    cand_rest = mass_outside(cand, idx)
    rest_term = torch.where(torch.isinf(rest), torch.zeros_like(rest), rest.exp() * (rest - cand_rest))
    return kl + rest_term


def full_kl(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """KL(teacher || student) per row from two (P, V) log-prob tensors."""
    return F.kl_div(student, teacher, log_target=True, reduction="none").sum(-1)
