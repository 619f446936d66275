import pytest
import torch

import faithmap as fm

CONTRACT_NAMES = ["saliency", "input_x_gradient", "integrated_gradients", "smoothgrad",
                  "vargrad", "gradcam"]
CONTRACT_CLASSES = {"saliency": fm.Saliency, "input_x_gradient": fm.InputXGradient,
                    "integrated_gradients": fm.IntegratedGradients, "smoothgrad": fm.SmoothGrad,
                    "vargrad": fm.VarGrad, "gradcam": fm.GradCAM}


def test_contract_names_registered():
    assert set(CONTRACT_NAMES) <= set(fm.available_methods())
    for name, cls in CONTRACT_CLASSES.items():
        assert cls.name == name


@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_get_explainer_matches_explain(name, cnn, x_small):
    explainer = fm.get_explainer(cnn, name)
    assert isinstance(explainer, CONTRACT_CLASSES[name])
    a = explainer(x_small, target=1)
    b = fm.explain(cnn, x_small, method=name, target=1)
    assert torch.equal(a, b)
    assert a.shape == ((4, 1, 16, 16) if name == "gradcam" else x_small.shape)
    assert not a.requires_grad and a.device == x_small.device and a.dtype == x_small.dtype
    assert explainer.metadata["target"] == [1, 1, 1, 1]


def test_unknown_method_lists_available(cnn, x_small):
    with pytest.raises(ValueError, match="available: saliency"):
        fm.explain(cnn, x_small, method="nope")


def test_unknown_option_raises(cnn):
    with pytest.raises(TypeError):
        fm.get_explainer(cnn, "saliency", n_steps=3)


def test_explainer_class_accepted(cnn, x_small):
    assert torch.equal(fm.explain(cnn, x_small, method=fm.Saliency),
                       fm.explain(cnn, x_small, method="saliency"))


def test_model_must_be_module(x_small):
    with pytest.raises(TypeError):
        fm.explain(lambda x: x, x_small)


# --- the one Registry -------------------------------------------------------------------

def test_registry_scoped_registration_is_undone():
    class Probe(fm.Saliency):
        pass

    with fm.METHODS.scoped("probe_for_test", Probe) as cls:
        assert cls is Probe and Probe.name == "probe_for_test"
        assert "probe_for_test" in fm.available_methods()
        assert isinstance(fm.get_explainer(torch.nn.Linear(2, 2), "probe_for_test"), Probe)
    assert "probe_for_test" not in fm.available_methods()


def test_registry_scoped_restores_a_shadowed_entry():
    class Shadow(fm.Saliency):
        pass

    with fm.METHODS.scoped("saliency", Shadow):
        assert fm.METHODS.get("saliency") is Shadow
    assert fm.METHODS.get("saliency") is fm.Saliency and fm.Saliency.name == "saliency"


def test_registry_refuses_a_taken_name_and_non_explainers():
    with pytest.raises(ValueError, match="already registered"):
        fm.METHODS.add("saliency", fm.SmoothGrad)
    with pytest.raises(TypeError, match="Explainer"):
        fm.METHODS.add("not_an_explainer", object)
    with pytest.raises(ValueError, match="lower-case"):
        fm.METHODS.add("Upper", fm.Saliency)


def test_methods_and_metrics_share_one_registry_class():
    assert type(fm.METHODS) is type(fm.METRICS) is fm.core.Registry
    assert fm.available_metrics() == fm.metrics.available_metrics() == fm.METRICS.names()
    assert fm.metrics.get_metric("deletion") is fm.metrics.deletion
    with pytest.raises(ValueError, match="unknown metric 'nope'; available: "):
        fm.metrics.get_metric("nope")


def test_adapters_register_their_own_prefixes():
    assert {"captum:", "zennit:"} <= set(fm.METHODS.prefixes())
    with pytest.raises(ValueError, match="'captum:…'"):
        fm.METHODS.get("nope")


def test_prefix_routes_to_the_adapter(cnn, x_small):
    seen = []

    def factory(rest, model, **options):
        seen.append((rest, options))
        return fm.Saliency(model)

    with fm.METHODS.scoped_prefix("probe:", factory):
        attr = fm.get_explainer(cnn, "probe:Anything", flag=1)(x_small)
    assert seen == [("Anything", {"flag": 1})]
    assert "probe:" not in fm.METHODS.prefixes()
    assert torch.equal(attr, fm.explain(cnn, x_small, "saliency"))


# --- get_explainer(model, method) in the order of explain --------------------------------

def test_old_argument_order_warns_and_gives_the_same_explainer(cnn, x_small):
    with pytest.warns(DeprecationWarning, match="get_explainer\\(model, method\\)"):
        old = fm.get_explainer("smoothgrad", cnn, n_samples=3, seed=1)
    new = fm.get_explainer(cnn, "smoothgrad", n_samples=3, seed=1)
    assert type(old) is type(new) and old.model is cnn
    assert torch.equal(old(x_small), new(x_small))
    with pytest.warns(DeprecationWarning):
        by_keyword = fm.get_explainer("saliency", model=cnn)
    assert by_keyword.model is cnn


def test_get_explainer_needs_model_and_method(cnn):
    with pytest.raises(TypeError, match="needs a model and a method"):
        fm.get_explainer(cnn)
    with pytest.raises(TypeError, match="torch.nn.Module"):
        fm.get_explainer(lambda x: x, "saliency")


# --- explain(..., return_metadata=True) -------------------------------------------------

def test_explain_returns_metadata_on_request(cnn, x_small):
    attr, meta = fm.explain(cnn, x_small, "integrated_gradients", target=2, n_steps=4,
                            convergence_delta=True, return_metadata=True)
    assert torch.equal(attr, fm.explain(cnn, x_small, "integrated_gradients", target=2,
                                        n_steps=4))
    assert meta["target"] == [2, 2, 2, 2]
    delta = meta["convergence_delta"]
    assert isinstance(delta, torch.Tensor) and delta.device.type == "cpu"
    assert not delta.requires_grad and delta.shape == (4,)


def test_boundary_flags_reach_the_user_through_metadata(cnn, x_small):
    """BSM/BIG's per-sample 'no boundary' flags are metadata, not only a warning."""
    with pytest.warns(RuntimeWarning, match="no decision boundary"):
        _, meta = fm.explain(cnn, x_small, "bsm", return_metadata=True, steps=1, cw_steps=0,
                             refine_steps=0, radius=[1e-6])
    assert isinstance(meta["fallback_samples"], list)
    assert all(isinstance(i, int) for i in meta["fallback_samples"])
    assert meta["fallback_samples"], "a search radius this small finds no boundary"
    record = meta["boundary"]  # the Boundary record, as plain values
    assert isinstance(record, dict) and record["points"].device.type == "cpu"
    assert record["found"].tolist() == [i not in meta["fallback_samples"] for i in range(4)]


def test_metadata_values_follow_one_rule():
    import numpy as np

    from faithmap.attacks.pgd import Sweep
    from faithmap.core.explainer import plain_metadata

    meta = plain_metadata({"t": torch.ones(2, requires_grad=True) * 2, "a": np.arange(3),
                           "s": np.float32(0.5), "nested": {"k": (torch.zeros(1), 1)},
                           "record": Sweep(torch.zeros(1, 1), torch.tensor([2]), 3, 4)})
    assert meta["t"].device.type == "cpu" and not meta["t"].requires_grad
    assert meta["a"] == [0, 1, 2] and meta["s"] == 0.5 and isinstance(meta["s"], float)
    assert isinstance(meta["nested"]["k"], list) and meta["nested"]["k"][1] == 1
    assert meta["record"]["radius_index"].tolist() == [2] and meta["record"]["forward"] == 4


class _Declared(fm.Explainer):
    """Saliency-shaped maps with a declared cost of ``passes`` forward passes per sample."""

    passes = 0

    def cost(self, x_shape, target=None):
        from faithmap.core.cost import Cost
        return Cost(self.passes, 0, other={"solver rows": self.passes})

    def attribute(self, x, target):
        return torch.ones_like(x)


def test_explain_warns_before_a_call_declared_to_cost_hours(recwarn):
    from faithmap.core.registry import EXPENSIVE_PASSES

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3)).eval()
    x = torch.rand(2, 1, 2, 2)
    cheap = type("Cheap", (_Declared,), {"passes": EXPENSIVE_PASSES // 2})
    fm.explain(model, x, method=cheap)  # total = the threshold itself: no warning
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]
    dear = type("Dear", (_Declared,), {"passes": EXPENSIVE_PASSES})
    with pytest.warns(UserWarning, match=r"Dear on inputs of shape \(2, 1, 2, 2\).*"
                                         r"100,000 forward.*preset='fast'"):
        attr = fm.explain(model, x, method=dear)
    assert attr.shape == x.shape  # warned, then ran
