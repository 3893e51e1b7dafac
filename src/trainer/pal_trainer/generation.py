"""Batched sampling with the KV cache: left-padded prompts, one forward over them, then a token per step."""

import torch


def _filter_logits(logits, top_k, top_p):
    """Sets to -inf every logit outside the top k and outside the smallest set with probability >= top_p."""
    if top_k and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        # A token goes when the tokens before it already reach top_p; the most likely always stays.
        drop_sorted = probs.cumsum(-1) - probs >= top_p
        drop_sorted[:, 0] = False
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def sample_next(logits, temperature=1.0, top_k=0, top_p=1.0, generator=None):
    """Next token ids (batch,) from last-position logits (batch, vocab); temperature 0 is greedy."""
    if temperature == 0:
        return logits.argmax(-1)
    logits = _filter_logits(logits.float() / temperature, top_k, top_p)
    probs = torch.softmax(logits, dim=-1)
    if generator is not None and generator.device != probs.device:
        # A generator only draws on its own device; sampling there keeps seeds reproducible.
        return torch.multinomial(probs.to(generator.device), 1, generator=generator).squeeze(-1).to(logits.device)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def generate(model, prompts, max_new_tokens, *, temperature=1.0, top_k=0, top_p=1.0, eos_token_id=None, pad_token_id=0, generator=None, ended=None):
    """Continues each prompt (a list of token ids); returns only the new tokens, eos excluded.

    eos_token_id may be one id or several. The model runs in eval mode under no_grad and gets
    its previous mode back afterwards. A list passed as `ended` receives, per prompt, whether its
    continuation ended with eos (False: cut at max_new_tokens).
    """
    if not prompts or any(len(p) == 0 for p in prompts):
        raise ValueError("generate needs at least one prompt, and every prompt at least one token")
    if temperature < 0 or not 0 < top_p <= 1 or top_k < 0:
        raise ValueError("need temperature >= 0, 0 < top_p <= 1 and top_k >= 0")
    config = getattr(model, "config", None)
    longest = max(len(p) for p in prompts)
    if getattr(config, "model_type", None) == "gpt2" and longest + max_new_tokens > config.max_position_embeddings:
        raise ValueError("prompt %d + %d new tokens exceed gpt2's %d positions" % (longest, max_new_tokens, config.max_position_embeddings))
    if eos_token_id is None:
        eos = set()
    elif isinstance(eos_token_id, int):
        eos = {eos_token_id}
    else:
        eos = set(eos_token_id)
    outputs = [[] for _ in prompts]
    if max_new_tokens <= 0:
        return outputs

    device = next(model.parameters()).device
    input_ids = torch.full((len(prompts), longest), pad_token_id, dtype=torch.long, device=device)
    attention_mask = torch.zeros((len(prompts), longest), dtype=torch.long, device=device)
    for row, prompt in enumerate(prompts):
        input_ids[row, longest - len(prompt) :] = torch.tensor(prompt, dtype=torch.long, device=device)
        attention_mask[row, longest - len(prompt) :] = 1

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits, past = model(input_ids, attention_mask=attention_mask, use_cache=True, logits_to_keep=1)
            finished = [False] * len(prompts)
            for step in range(max_new_tokens):
                tokens = sample_next(logits[:, -1], temperature, top_k, top_p, generator).tolist()
                for row, token in enumerate(tokens):
                    if finished[row]:
                        continue
                    if token in eos:
                        finished[row] = True
                    else:
                        outputs[row].append(token)
                if all(finished) or step == max_new_tokens - 1:
                    break
                # Finished rows keep running (the batch stays rectangular); their tokens are ignored.
                next_ids = torch.tensor(
                    [[pad_token_id if done else token] for done, token in zip(finished, tokens, strict=True)], dtype=torch.long, device=device
                )
                attention_mask = torch.cat((attention_mask, attention_mask.new_ones((len(prompts), 1))), dim=1)
                logits, past = model(next_ids, attention_mask=attention_mask, past_key_values=past, use_cache=True)
    finally:
        model.train(was_training)
    if ended is not None:
        ended[:] = finished
    return outputs
