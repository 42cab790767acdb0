"""Group-aware batches for in-batch-negative losses: no two rows of a batch share a component.

With MultipleNegativesRankingLoss every other row's texts are negatives for an anchor. Two questions
of one FAQ in a batch (or a question and the shared answer of its FAQ) would be pushed apart: a false
negative. The trainer's NoDuplicatesBatchSampler only compares exact strings; this sampler compares
components (paraphrase groups, see pairs.Components), so paraphrases never meet in a batch either.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

import torch

from sentence_transformers.base.sampler import DefaultBatchSampler


def plan_batches(
    row_keys: Sequence[frozenset[str]], batch_size: int, order: Sequence[int], drop_last: bool
) -> list[list[int]]:
    """Greedy: walk the shuffled rows, put each in the current batch unless it shares a key, else defer it.

    Rows that conflict with every batch formed in a pass wait for the next one; a last partial batch is
    kept unless drop_last. Never yields two rows whose key sets overlap in one batch.
    """
    batches: list[list[int]] = []
    remaining = list(order)
    while remaining:
        batch: list[int] = []
        used: set[str] = set()
        deferred: list[int] = []
        for position, index in enumerate(remaining):
            keys = row_keys[index]
            if used.isdisjoint(keys):
                batch.append(index)
                used.update(keys)
                if len(batch) == batch_size:
                    deferred.extend(remaining[position + 1 :])
                    break
            else:
                deferred.append(index)
        if len(batch) == batch_size:
            batches.append(batch)
            remaining = deferred
            continue
        # A partial batch: whatever is left conflicts with it (one big group); keep the batch, drop the rest.
        if batch and not drop_last and len(batch) > 1:
            batches.append(batch)
        break
    return batches


class GroupAwareBatchSampler(DefaultBatchSampler):
    """A trainer batch sampler; build it through `group_aware_sampler(component_of)` for TrainingArguments."""

    def __init__(
        self,
        dataset,
        batch_size: int,
        drop_last: bool,
        valid_label_columns: list[str] | None = None,
        generator: torch.Generator | None = None,
        seed: int = 0,
        component_of: Callable[[str], str] | None = None,
    ) -> None:
        super().__init__(
            dataset, batch_size=batch_size, drop_last=drop_last,
            valid_label_columns=valid_label_columns, generator=generator, seed=seed,
        )
        labels = set(valid_label_columns or [])
        text_columns = [c for c in dataset.column_names if c not in labels and c != "dataset_name"]
        component_of = component_of or (lambda text: text)
        columns = [dataset[c] for c in text_columns]
        # Each row: the components of all its texts, plus the texts themselves (exact duplicates too).
        self.row_keys: list[frozenset[str]] = [
            frozenset(k for text in row for k in (component_of(text), text)) for row in zip(*columns)
        ]
        self.num_rows = len(self.row_keys)

    def __iter__(self) -> Iterator[list[int]]:
        generator = self.generator or torch.Generator()
        generator.manual_seed(self.seed + self.epoch)
        order = torch.randperm(self.num_rows, generator=generator).tolist()
        batches = plan_batches(self.row_keys, self.batch_size, order, self.drop_last)
        yield from batches[: len(self)]

    def __len__(self) -> int:
        full, rest = divmod(self.num_rows, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)


class group_aware_sampler:  # noqa: N801 - used like a class by the trainer (a callable returning a sampler)
    """The `batch_sampler` argument for SentenceTransformerTrainingArguments.

    `components` maps each (prepared) training text to its component; unknown texts stand for
    themselves. A plain dict, because the trainer pickles its arguments into every checkpoint.
    """

    def __init__(self, components: Mapping[str, str]) -> None:
        self.components = dict(components)

    def __call__(self, dataset, **kwargs) -> GroupAwareBatchSampler:
        return GroupAwareBatchSampler(dataset, component_of=self._of, **kwargs)

    def _of(self, text: str) -> str:
        return self.components.get(text, text)

    def __repr__(self) -> str:
        return "group_aware_sampler()"
