import pytest
import torch

from faithmap.core import chunks, map_rows, sum_rows
from faithmap.core.batching import check_batch_size


@pytest.mark.parametrize("batch_size", [1, 3, 7, 100, None])
def test_chunks_cover_rows_in_order(batch_size):
    parts = list(chunks(10, batch_size))
    assert torch.equal(torch.cat(parts), torch.arange(10))
    assert all(len(p) <= (batch_size or 10) for p in parts)


@pytest.mark.parametrize("batch_size", [1, 2, 5, None])
def test_sum_rows_groups_by_sample(batch_size):
    values = torch.randn(12, 3, dtype=torch.float64)
    out = sum_rows(12, 4, batch_size, lambda r: r % 4, lambda r: values[r])
    ref = values.view(3, 4, 3).sum(0)
    assert torch.equal(out, sum_rows(12, 4, 12, lambda r: r % 4, lambda r: values[r]))
    torch.testing.assert_close(out, ref)


def test_map_rows_concatenates():
    assert torch.equal(map_rows(5, 2, lambda r: r * 2), torch.arange(5) * 2)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "8"])
def test_bad_batch_size(bad):
    with pytest.raises(ValueError):
        check_batch_size(bad)
