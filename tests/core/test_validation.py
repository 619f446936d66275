import numpy as np
import pytest
import torch

import faithmap as fm
from faithmap.core import InvalidInputError, check_input

BAD_INPUTS = {
    "3-D": torch.rand(3, 16, 16),
    "5-D": torch.rand(1, 1, 3, 16, 16),
    "int dtype": torch.randint(0, 255, (2, 3, 16, 16)),
    "bool dtype": torch.rand(2, 3, 16, 16) > 0.5,
    "numpy": np.random.rand(2, 3, 16, 16).astype(np.float32),
    "empty batch": torch.rand(0, 3, 16, 16),
    "list": [[1.0]],
}


# COMET's mask ignores the model; it refuses any model but its detector unless asked
OPTIONS = {"comet": {"check_model": False}}


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_inputs_are_rejected_by_every_method(name, cnn):
    for method in fm.available_methods():
        with pytest.raises(InvalidInputError):
            fm.explain(cnn, BAD_INPUTS[name], method=method, **OPTIONS.get(method, {}))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_values_name_the_sample(value, cnn):
    x = torch.rand(4, 3, 16, 16)
    x[2, 1, 3, 3] = value
    for method in fm.available_methods():
        with pytest.raises(InvalidInputError, match=r"sample\(s\) 2$"):
            fm.explain(cnn, x, method=method, **OPTIONS.get(method, {}))


def test_invalid_input_error_is_value_error():
    with pytest.raises(ValueError):
        check_input(torch.rand(3, 3))


def test_double_input_to_float_model_keeps_input_dtype(cnn):
    x = torch.rand(2, 3, 16, 16, dtype=torch.float64)
    attr = fm.explain(cnn, x, method="saliency")
    assert attr.dtype == torch.float64
    ref = fm.explain(cnn, x.float(), method="saliency")
    torch.testing.assert_close(attr.float(), ref)
