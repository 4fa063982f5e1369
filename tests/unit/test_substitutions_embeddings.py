"""The sentence encoder's use of threads, with a stand-in for the model."""

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
import torch

from substitutions.embeddings import SentenceEncoder, Vectors, before_torch

pytestmark = pytest.mark.unit


class _Model:
    """Record how many torch threads each batch was encoded with."""

    def __init__(self) -> None:
        self.threads: list[tuple[int, int]] = []

    def encode(self, texts: Sequence[str], **options: Any) -> Vectors:
        self.threads.append((len(texts), torch.get_num_threads()))
        return np.zeros((len(texts), SentenceEncoder.dimensions), dtype=np.float32)


def test_a_few_names_are_encoded_on_one_thread_and_the_threads_are_given_back() -> None:
    encoder = SentenceEncoder.__new__(SentenceEncoder)
    model = _Model()
    encoder._model = model  # type: ignore[assignment]
    encoder._batch_size = 256
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert encoder.encode(["tartare sauce"]).shape == (1, SentenceEncoder.dimensions)
        encoder.encode(["pine nuts"] * 50)

        assert model.threads == [(1, 1), (50, 2)]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_idle_threads_sleep_and_nothing_downloads_unless_the_operator_said_otherwise() -> None:
    fresh: dict[str, str] = {}
    before_torch(fresh)
    assert fresh == {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    chosen = {"OMP_WAIT_POLICY": "ACTIVE"}
    before_torch(chosen)
    assert chosen["OMP_WAIT_POLICY"] == "ACTIVE"
