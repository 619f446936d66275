import pytest
import torch

import faithmap.data as fd


@pytest.fixture(scope="module")
def mnist_test():
    return fd.load("mnist", "test")


@pytest.mark.parametrize("n", [2, 3])
def test_grid_masks_are_exact(mnist_test, n):
    x, y = mnist_test
    b = fd.grid(mnist_test, n=n, count=20, seed=1)
    assert b.images.shape == (20, 1, 28 * n, 28 * n)
    assert b.labels.shape == (20, n * n) and b.masks.shape == (20, n * n, 28 * n, 28 * n)
    # distinct classes per grid, cell labels match the source digits
    assert all(len(set(row.tolist())) == n * n for row in b.labels)
    assert torch.equal(y[b.index], b.labels)
    # masks partition the image into the n*n cells, each cell holds its digit exactly
    assert (b.masks.sum(1) == 1).all()
    for cell in range(n * n):
        r, c = divmod(cell, n)
        expect = torch.zeros(28 * n, 28 * n, dtype=torch.bool)
        expect[28 * r:28 * (r + 1), 28 * c:28 * (c + 1)] = True
        assert torch.equal(b.masks[:, cell], expect.expand(20, -1, -1))
        crop = b.images[:, :, 28 * r:28 * (r + 1), 28 * c:28 * (c + 1)]
        assert torch.equal(crop, x[b.index[:, cell]])


def test_grid_is_seeded():
    a, b, c = fd.grid(count=8, seed=3), fd.grid(count=8, seed=3), fd.grid(count=8, seed=4)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.images, c.images)
    with pytest.raises(ValueError):
        fd.grid(n=4)


def test_cluttered_masks_are_exact(mnist_test):
    x, y = mnist_test
    b = fd.cluttered(mnist_test, canvas=56, count=50, seed=2)
    assert b.images.shape == (50, 1, 56, 56) and b.masks.shape == (50, 1, 56, 56)
    assert b.masks.dtype == torch.bool and torch.equal(b.labels, y[b.index])
    assert b.images.min() >= 0 and b.images.max() <= 1
    clutter = 0.0
    for i in range(50):
        y0, x0, y1, x1 = b.boxes[i].tolist()
        assert (y1 - y0, x1 - x0) == (28, 28) and y0 >= 0 and y1 <= 56 and x1 <= 56
        digit = x[b.index[i]]
        assert torch.equal(b.images[i, :, y0:y1, x0:x1], digit)
        assert torch.equal(b.masks[i, :, y0:y1, x0:x1], digit > 0)
        inside = torch.zeros(56, 56, dtype=torch.bool)
        inside[y0:y1, x0:x1] = True
        assert not b.masks[i, 0][~inside].any()
        clutter += float(b.images[i, 0][~inside].sum())
    assert clutter > 0  # distractors are present outside the digit's box


def test_cluttered_is_seeded_and_validates():
    a, b = fd.cluttered(count=10, seed=5), fd.cluttered(count=10, seed=5)
    assert torch.equal(a.images, b.images) and torch.equal(a.masks, b.masks)
    assert not torch.equal(a.images, fd.cluttered(count=10, seed=6).images)
    with pytest.raises(ValueError):
        fd.cluttered(canvas=20)
