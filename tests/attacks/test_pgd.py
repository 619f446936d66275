import pytest
import torch
import torch.nn.functional as F
from torch import nn

from faithmap import zoo
from faithmap.attacks import pgd_l2, project_l2
from faithmap.core.errors import InvalidInputError


@pytest.fixture
def model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3))


def test_pgd_l2_stays_in_ball_and_box_and_raises_loss(model):
    x, y = torch.rand(32, 1, 4, 4), torch.randint(3, (32,))
    g = torch.Generator().manual_seed(0)
    adv = pgd_l2(model, x, y, radius=0.5, steps=20, generator=g)
    assert not adv.requires_grad and adv.shape == x.shape
    assert ((adv - x).flatten(1).norm(dim=1) <= 0.5 + 1e-5).all()
    assert adv.min() >= 0 and adv.max() <= 1
    clean = F.cross_entropy(model(x), y, reduction="none")
    attacked = F.cross_entropy(model(adv), y, reduction="none")
    assert (attacked >= clean - 1e-6).float().mean() > 0.9 and attacked.mean() > clean.mean()


def test_pgd_l2_is_seeded_and_respects_the_model(model):
    x, y = torch.rand(8, 1, 4, 4), torch.randint(3, (8,))
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    a = pgd_l2(model, x, y, 0.3, 5, generator=torch.Generator().manual_seed(1))
    b = pgd_l2(model, x, y, 0.3, 5, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert model.training and all(p.grad is None for p in model.parameters())
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_pgd_l2_targeted_and_zero_radius(model):
    x = torch.rand(16, 1, 4, 4)
    t = torch.zeros(16, dtype=torch.long)
    adv = pgd_l2(model, x, t, 1.0, 20, targeted=True, generator=torch.Generator().manual_seed(0))
    assert F.cross_entropy(model(adv), t) < F.cross_entropy(model(x), t)
    assert torch.equal(pgd_l2(model, x, t, 0.0, 3), x)


def test_project_l2():
    x = torch.full((2, 1, 2, 2), 0.5)
    d = project_l2(torch.ones(2, 1, 2, 2), x, 0.2)
    assert torch.allclose(d.flatten(1).norm(dim=1), torch.full((2,), 0.2))
    d = project_l2(torch.full((2, 1, 2, 2), 3.0), x, 10.0)
    assert torch.allclose(x + d, torch.ones_like(x))


def test_old_eps_names_warn_and_give_identical_results(model):
    x, y = torch.rand(6, 1, 4, 4), torch.randint(3, (6,))
    new = pgd_l2(model, x, y, radius=0.4, steps=4, generator=torch.Generator().manual_seed(2))
    with pytest.warns(DeprecationWarning, match="pgd_l2: 'eps' is deprecated, use 'radius'"):
        old = pgd_l2(model, x, y, eps=0.4, steps=4, generator=torch.Generator().manual_seed(2))
    assert torch.equal(old, new)
    d = torch.randn(6, 1, 4, 4, generator=torch.Generator().manual_seed(3))
    with pytest.warns(DeprecationWarning, match="project_l2: 'eps' is deprecated"):
        assert torch.equal(project_l2(d, x, eps=0.3), project_l2(d, x, radius=0.3))
    robust = zoo.robust_accuracy(model, x, y, radius=0.4, steps=3)
    with pytest.warns(DeprecationWarning, match="robust_accuracy: 'eps' is deprecated"):
        assert zoo.robust_accuracy(model, x, y, eps=0.4, steps=3) == robust


def test_pgd_l2_checks_its_inputs(model):
    y = torch.zeros(2, dtype=torch.long)
    with pytest.raises(InvalidInputError, match="NaN"):
        pgd_l2(model, torch.full((2, 1, 4, 4), float("nan")), y, 0.5)
    with pytest.raises(InvalidInputError, match="4-D"):
        pgd_l2(model, torch.rand(2, 16), y, 0.5)
    with pytest.raises(ValueError, match="radius and steps must be non-negative"):
        pgd_l2(model, torch.rand(2, 1, 4, 4), y, -1.0)


def test_adversarial_radius_reads_the_recorded_eps_key():
    from faithmap.zoo.training import adversarial_radius

    assert adversarial_radius({"eps": 1.0, "steps": 3}) == 1.0
    assert adversarial_radius({"radius": 0.5, "eps": 1.0}) == 0.5
    assert adversarial_radius({}, default=1.0) == 1.0
    with pytest.raises(KeyError, match="radius"):
        adversarial_radius({})
