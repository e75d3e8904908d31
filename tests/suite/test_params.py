"""cnnlab.params: notebook defaults, profile resolution and one-line errors, in the toy workspace."""

import math
import re
import shutil

import nbformat
import pytest
from conftest import TOY_YAML, use_workspace, write_toy

from cnnlab import paths
from cnnlab.suite import params, runner
from cnnlab.suite.cli import main
from cnnlab.suite.params import ParamError

TOY_DEFAULTS = dict(profile="quick", seed=0, output_dir="", n=3, rate=0.5, fail=False, sleep_s=0.0)


def raises_one_line(func, *parts):
    """Call func; it must raise ParamError with a one-line message containing every part."""
    with pytest.raises(ParamError) as info:
        func()
    message = str(info.value)
    assert "\n" not in message, message
    for part in parts:
        assert part in message, f"{part!r} not in {message!r}"
    return message


def set_parameters_cell(root, source):
    path = root / "notebooks" / "99_toy.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[1].source = source
    nbformat.write(nb, path)


def load_toy():
    return params.find("99")


# -- defaults and resolution -------------------------------------------------------------------------------------


def test_notebook_defaults_are_read_from_the_parameters_cell(toy_root):
    assert params.notebook_parameters(toy_root / "notebooks" / "99_toy.ipynb")[0] == TOY_DEFAULTS
    exp = load_toy()
    assert exp.name == "99_toy" and exp.number == "99" and exp.title == "Toy experiment"
    assert exp.defaults == TOY_DEFAULTS
    assert exp.datasets == ()
    assert exp.profiles == {"smoke": {"n": 2}, "quick": {}, "full": {"n": 4, "rate": 1.0}}
    assert exp.notebook == toy_root / "notebooks" / "99_toy.ipynb"


EMPTY_PROFILES = "title: Toy\nprofiles: {smoke: {}, quick: {}, full: {}}\n"


def test_annotated_and_commented_parameters(toy_root):
    write_toy(toy_root, yaml_text=EMPTY_PROFILES)
    set_parameters_cell(toy_root, 'profile = "quick"  # set by the runner\nseed: int = 0\noutput_dir = ""\n'
                                  "sizes = [1, 2]\nconfig = {'a': (1, 2)}\nmaybe = None\n")
    assert load_toy().defaults == dict(profile="quick", seed=0, output_dir="", sizes=[1, 2],
                                       config={"a": (1, 2)}, maybe=None)


def test_resolution_order_defaults_profile_overrides_seed(toy_root):
    exp = load_toy()
    assert params.resolve(exp, "quick") == dict(TOY_DEFAULTS, profile="quick")
    assert params.resolve(exp, "smoke") == dict(TOY_DEFAULTS, profile="smoke", n=2)
    full = params.resolve(exp, "full")
    assert full == dict(TOY_DEFAULTS, profile="full", n=4, rate=1.0)
    # -p overrides beat the profile, --seed beats a -p seed
    assert params.resolve(exp, "smoke", {"n": 7, "seed": 5}) == dict(TOY_DEFAULTS, profile="smoke", n=7, seed=5)
    assert params.resolve(exp, "smoke", {"n": 7, "seed": 5}, seed=9)["seed"] == 9
    assert params.resolve(exp, "full", {"rate": 0.25})["rate"] == 0.25
    # resolving does not alter the experiment
    assert exp.defaults == TOY_DEFAULTS and exp.profiles["smoke"] == {"n": 2}


def test_int_for_a_float_key_becomes_float(toy_root):
    exp = load_toy()
    rate = params.resolve(exp, "full")["rate"]  # `rate: 1` in the YAML
    assert rate == 1.0 and type(rate) is float
    value = params.resolve(exp, "quick", {"sleep_s": 2})["sleep_s"]
    assert value == 2.0 and type(value) is float
    assert type(params.resolve(exp, "quick", {"n": 5})["n"]) is int


def test_none_default_accepts_any_value(toy_root):
    write_toy(toy_root, yaml_text=EMPTY_PROFILES)
    set_parameters_cell(toy_root, 'profile = "quick"\nseed = 0\noutput_dir = ""\nlimit = None\n')
    exp = load_toy()
    assert params.resolve(exp, "quick", {"limit": 10})["limit"] == 10
    assert params.resolve(exp, "quick", {"limit": "all"})["limit"] == "all"


# -- errors: one line naming the file, the key and what is allowed ----------------------------------------------


def test_unknown_key_in_a_profile(toy_root):
    write_toy(toy_root, yaml_text=TOY_YAML.replace("smoke: {n: 2}", "smoke: {n: 2, epochs: 3}"))
    raises_one_line(load_toy, "params/99_toy.yaml", "profile 'smoke'", "unknown key 'epochs'",
                    "allowed: fail, n, output_dir, profile, rate, seed, sleep_s")


@pytest.mark.parametrize(
    "yaml_value, key, expected_type, shown",
    [
        ('"abc"', "n", "int", '"abc" (str)'),
        ("1", "fail", "bool", "1 (int)"),
        ("true", "n", "int", "true (bool)"),
        ("2.5", "n", "int", "2.5 (float)"),
        ("fast", "rate", "float", '"fast" (str)'),
        ("[1]", "output_dir", "str", "[1] (list)"),
    ],
)
def test_wrong_type_in_a_profile(toy_root, yaml_value, key, expected_type, shown):
    write_toy(toy_root, yaml_text=TOY_YAML.replace("quick: {}", f"quick: {{{key}: {yaml_value}}}"))
    raises_one_line(load_toy, "params/99_toy.yaml", "profile 'quick'", f"key '{key}' must be {expected_type}",
                    f"got {shown}")


@pytest.mark.parametrize(
    "overrides, key, expected_type",
    [({"n": "abc"}, "n", "int"), ({"fail": 1}, "fail", "bool"), ({"n": True}, "n", "int"),
     ({"rate": False}, "rate", "float"), ({"seed": 1.5}, "seed", "int")],
)
def test_wrong_type_in_an_override(toy_root, overrides, key, expected_type):
    exp = load_toy()
    raises_one_line(lambda: params.resolve(exp, "quick", overrides), "params/99_toy.yaml: -p",
                    f"key '{key}' must be {expected_type}")


def test_unknown_key_in_an_override(toy_root):
    exp = load_toy()
    raises_one_line(lambda: params.resolve(exp, "quick", {"epochs": 3}), "params/99_toy.yaml: -p",
                    "unknown key 'epochs'", "allowed: fail, n, output_dir, profile, rate, seed, sleep_s")


def test_bad_seed(toy_root):
    exp = load_toy()
    raises_one_line(lambda: params.resolve(exp, "quick", seed="1"), "params/99_toy.yaml: --seed", "key 'seed'")


def test_unknown_profile(toy_root):
    exp = load_toy()
    raises_one_line(lambda: params.resolve(exp, "huge"), "params/99_toy.yaml", "unknown profile 'huge'",
                    "allowed: smoke, quick, full")


@pytest.mark.parametrize(
    "yaml_text",
    [
        "title: Toy\nprofiles:\n  smoke: {}\n  quick: {}\n",  # full missing
        "title: Toy\nprofiles:\n  smoke: {}\n  quick: {}\n  full: {}\n  huge: {}\n",  # one too many
        "title: Toy\n",  # no profiles at all
        "title: Toy\nprofiles:\n  smoke: {}\n  quick: {}\n  1: {}\n",  # a non-string key
        "title: Toy\nprofiles: [smoke, quick, full]\n",
    ],
)
def test_missing_or_extra_profile(toy_root, yaml_text):
    write_toy(toy_root, yaml_text=yaml_text)
    raises_one_line(load_toy, "params/99_toy.yaml", "profiles must be exactly smoke, quick, full")


def test_profile_that_is_not_a_mapping(toy_root):
    write_toy(toy_root, yaml_text=TOY_YAML.replace("quick: {}", "quick: [n, 3]"))
    raises_one_line(load_toy, "params/99_toy.yaml", "profile 'quick' must be a mapping")


def test_empty_profile_is_allowed(toy_root):
    write_toy(toy_root, yaml_text=TOY_YAML.replace("quick: {}", "quick:"))
    assert params.resolve(load_toy(), "quick") == TOY_DEFAULTS


def test_unknown_top_level_key(toy_root):
    write_toy(toy_root, yaml_text=TOY_YAML + "epochs: 3\n")
    raises_one_line(load_toy, "params/99_toy.yaml", "unknown key 'epochs'", "allowed: title, datasets, profiles")


def test_unknown_dataset(toy_root):
    write_toy(toy_root, yaml_text=TOY_YAML.replace("datasets: []", "datasets: [imagenet]"))
    raises_one_line(load_toy, "params/99_toy.yaml", "datasets", "unknown dataset 'imagenet'",
                    "allowed: fashion_mnist")


def test_datasets_must_be_a_list(toy_root):
    write_toy(toy_root, yaml_text=TOY_YAML.replace("datasets: []", "datasets: fashion_mnist"))
    raises_one_line(load_toy, "params/99_toy.yaml", "datasets must be a list", "allowed: fashion_mnist")


def test_known_dataset(toy_root):
    write_toy(toy_root, yaml_text=TOY_YAML.replace("datasets: []", "datasets: [fashion_mnist]"))
    assert load_toy().datasets == ("fashion_mnist",)


@pytest.mark.parametrize("yaml_text", ["title: [unclosed\nprofiles: {}\n", "profiles:\n  smoke: {n: 2\n",
                                       "a: b\n c: d\n"])
def test_invalid_yaml(toy_root, yaml_text):
    write_toy(toy_root, yaml_text=yaml_text)
    raises_one_line(load_toy, "params/99_toy.yaml", "not valid YAML")


def test_yaml_that_is_not_a_mapping(toy_root):
    write_toy(toy_root, yaml_text="- smoke\n- quick\n")
    raises_one_line(load_toy, "params/99_toy.yaml", "expected a mapping with keys title, datasets, profiles")


def test_missing_notebook(toy_root):
    (toy_root / "notebooks" / "99_toy.ipynb").unlink()
    raises_one_line(load_toy, "params/99_toy.yaml", "no notebook notebooks/99_toy.ipynb")


def test_unknown_experiment_lists_the_allowed_ones(toy_root):
    (toy_root / "params" / "98_other.yaml").write_text(TOY_YAML)
    raises_one_line(lambda: params.find("42"), "unknown experiment '42'", "allowed: 98_other, 99_toy")
    raises_one_line(lambda: params.find("to"), "unknown experiment 'to'")


def test_unknown_experiment_in_an_empty_workspace(toy_root):
    (toy_root / "params" / "99_toy.yaml").unlink()
    raises_one_line(lambda: params.find("99"), "unknown experiment '99'", "allowed: none")


@pytest.mark.parametrize("name", ["99", "99_toy", "toy"])
def test_find_by_number_name_or_title(toy_root, name):
    exp = params.find(name)
    assert exp.name == "99_toy"
    assert exp.params_file == toy_root / "params" / "99_toy.yaml"


def test_discover_lists_experiments_in_order(toy_root):
    write_toy(toy_root)
    (toy_root / "notebooks" / "99_toy.ipynb").rename(toy_root / "notebooks" / "05_first.ipynb")
    (toy_root / "params" / "99_toy.yaml").rename(toy_root / "params" / "05_first.yaml")
    write_toy(toy_root)
    (toy_root / "params" / "notes.yaml").write_text("not an experiment")
    assert [e.name for e in params.discover()] == ["05_first", "99_toy"]


def test_parameters_cell_missing(toy_root):
    path = toy_root / "notebooks" / "99_toy.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[1].metadata["tags"] = []
    nbformat.write(nb, path)
    raises_one_line(load_toy, "notebooks/99_toy.ipynb", "needs exactly one cell tagged 'parameters', found 0")


def test_two_parameters_cells(toy_root):
    path = toy_root / "notebooks" / "99_toy.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[2].metadata["tags"] = ["parameters"]
    nbformat.write(nb, path)
    raises_one_line(load_toy, "notebooks/99_toy.ipynb", "found 2")


@pytest.mark.parametrize(
    "source, parts",
    [
        ('profile = "quick"\nseed = 0\noutput_dir = ""\nn = len("abc")\n', ["parameter 'n' must have a literal"]),
        ('profile = "quick"\nseed = 0\noutput_dir = ""\nimport os\n', ["may only assign literals (line 4)"]),
        ('profile = "quick"\nseed = 0\noutput_dir = ""\na = b = 1\n', ["assign one name per line in the parameters cell (line 4)"]),
        ('profile = "quick"\nseed = 0\noutput_dir = ""\nn: int\n', ["parameter 'n' must have a literal"]),
        ('profile = "quick"\nseed = 0\noutput_dir = ""\n%matplotlib inline\n', ["not valid Python (line 4"]),
        ('profile = "quick"\nseed = 0\nn = 3\n', ["the parameters cell lacks output_dir"]),
    ],
)
def test_parameters_cell_not_literal(toy_root, source, parts):
    set_parameters_cell(toy_root, source)
    raises_one_line(load_toy, "notebooks/99_toy.ipynb", *parts)


# -- command-line overrides ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("n=3", ("n", 3)),
        ("rate=0.1", ("rate", 0.1)),
        ("lr=1e-3", ("lr", 0.001)),
        ("sizes=[1, 2]", ("sizes", [1, 2])),
        ("fail=true", ("fail", True)),
        ("name=abc", ("name", "abc")),
        (" n = 3", ("n", 3)),
        ("name=", ("name", "")),
        ("expr=a=b", ("expr", "a=b")),
        ("broken=[1, 2", ("broken", "[1, 2")),
    ],
)
def test_parse_override_reads_yaml(text, expected):
    key, value = params.parse_override(text)
    assert (key, value) == expected
    assert type(value) is type(expected[1])


@pytest.mark.parametrize("text", ["n", "=3", " =3"])
def test_parse_override_without_key_or_equals(text):
    raises_one_line(lambda: params.parse_override(text), f"-p {text}", "expected key=value")


# -- declared types and bounds -------------------------------------------------------------------------------------

SPECIFIED = """profile: str = "quick"  # set by the runner
seed: int = 0  # first seed [at least 0]
output_dir: str = ""  # run folder
n_seeds: int = 3  # paired seeds [at least 1]
widths: list[int] = [7, 8]  # grid widths [at least 1, non-empty]
thresholds: list[float] = [0.25, 0.1]  # error thresholds [above 0, below 1, non-empty]
stages: list[list[int]] = [[16], [32]]  # widths per stage [at least 1]
rate: float = 0.5  # a rate [above 0, at most 1]
name: str = "relu"  # no bounds
"""


def use_specified(root, source=SPECIFIED, profiles="smoke: {}\n  quick: {}\n  full: {}"):
    write_toy(root, yaml_text=f"title: Toy\ndatasets: []\nprofiles:\n  {profiles}\n")
    set_parameters_cell(root, source)


def test_specs_are_read_from_annotations_and_comments(toy_root):
    use_specified(toy_root)
    specs = load_toy().specs
    assert specs["n_seeds"] == params.Spec("int", (("at least", 1.0),), False, "paired seeds")
    assert specs["thresholds"].describe() == "list[float], each finite, above 0 and below 1, non-empty"
    assert specs["stages"].describe() == "list[list[int]], each at least 1"
    assert specs["name"] == params.Spec("str", (), False, "no bounds")
    resolved = params.resolve(load_toy(), "quick", {"thresholds": [0.5], "rate": 1})
    assert resolved["thresholds"] == [0.5] and resolved["rate"] == 1.0 and isinstance(resolved["rate"], float)


@pytest.mark.parametrize(
    "key, value, allowed, shown",
    [
        ("n_seeds", 0, "int, at least 1", "0 (int)"),
        ("n_seeds", -1, "int, at least 1", "-1 (int)"),
        ("widths", ["a", 3], "list[int], each at least 1, non-empty", '["a", 3] (list)'),
        ("widths", [], "list[int], each at least 1, non-empty", "[] (list)"),
        ("widths", [7, 0], "list[int], each at least 1, non-empty", "[7, 0] (list)"),
        ("thresholds", [0.5, 1.5], "list[float], each finite, above 0 and below 1, non-empty", "[0.5, 1.5] (list)"),
        ("thresholds", 0.5, "list[float], each finite, above 0 and below 1, non-empty", "0.5 (float)"),
        ("stages", [[16], ["x"]], "list[list[int]], each at least 1", '[[16], ["x"]] (list)'),
        ("rate", 0, "float, finite, above 0 and at most 1", "0 (int)"),
        ("seed", -5, None, None),
    ],
)
def test_values_out_of_bounds_or_of_the_wrong_element_type_are_refused(toy_root, key, value, allowed, shown):
    use_specified(toy_root)
    if shown is None:  # the seed's bound is the notebook's too
        raises_one_line(lambda: params.resolve(load_toy(), "quick", seed=value),
                        "--seed: key 'seed' must be int, at least 0")
        return
    message = raises_one_line(lambda: params.resolve(load_toy(), "quick", {key: value}))
    assert message == f"params/99_toy.yaml: -p: key '{key}' must be {allowed}, got {shown}"


def test_a_profile_out_of_bounds_is_refused_when_the_file_is_read(toy_root):
    use_specified(toy_root, profiles="smoke: {n_seeds: 0}\n  quick: {}\n  full: {}")
    raises_one_line(load_toy, "params/99_toy.yaml: profile 'smoke': key 'n_seeds' must be int, at least 1, got 0")


@pytest.mark.parametrize(
    "line, parts",
    [
        ("n_seeds: int = 0  # paired seeds [at least 1]", ["parameter 'n_seeds': the default 0 is not int, at least 1"]),
        ("n_seeds: int = 3  # paired seeds [more than 1]", ["parameter 'n_seeds': unknown constraint 'more than 1'",
                                                            "allowed: at least N, above N"]),
        ("n_seeds: tuple = 3  # x", ["parameter 'n_seeds': unsupported type 'tuple'"]),
    ],
)
def test_a_notebook_whose_declarations_do_not_hold_is_refused(toy_root, line, parts):
    use_specified(toy_root, SPECIFIED.replace("n_seeds: int = 3  # paired seeds [at least 1]", line))
    raises_one_line(load_toy, "notebooks/99_toy.ipynb: ", *parts)


RATE = "float, finite, above 0 and at most 1"


@pytest.mark.parametrize("text, allowed, shown", [
    ("rate=inf", RATE, "Infinity (float)"), ("rate=.inf", RATE, "Infinity (float)"),
    ("rate=-inf", RATE, "-Infinity (float)"), ("rate=nan", RATE, "NaN (float)"),
    ("thresholds=[0.5, .inf]", "list[float], each finite, above 0 and below 1, non-empty", "[0.5, Infinity] (list)")])
def test_a_bound_means_finite(toy_root, text, allowed, shown):
    use_specified(toy_root)
    key, value = params.parse_override(text)
    message = raises_one_line(lambda: params.resolve(load_toy(), "quick", {key: value}))
    assert message == f"params/99_toy.yaml: -p: key '{key}' must be {allowed}, got {shown}"


def test_a_key_twice_in_a_parameter_file_is_refused(toy_root):
    write_toy(toy_root, yaml_text=TOY_YAML.replace("quick: {}", "quick: {n: 5, n: 6}"))
    raises_one_line(load_toy, "params/99_toy.yaml: not valid YAML", "the key 'n' appears twice", "line 5")
    write_toy(toy_root, yaml_text=TOY_YAML + "title: Again\n")
    raises_one_line(load_toy, "params/99_toy.yaml: not valid YAML", "the key 'title' appears twice", "line 7")


def test_a_parameter_file_that_is_not_text_or_not_a_file_is_one_line(toy_root):
    path = toy_root / "params" / "99_toy.yaml"
    path.write_bytes(b"title: Toy\n\xff\xfe\x00binary")
    raises_one_line(load_toy, "params/99_toy.yaml: not UTF-8 text (byte 11); save it as UTF-8 YAML")
    path.unlink()
    path.mkdir()
    raises_one_line(load_toy, "params/99_toy.yaml: cannot be read (Is a directory)")


NAMED = SPECIFIED + """act: str = "relu"  # activation [one of relu | tanh]
configs: list[str] = ["A", "B"]  # configurations [one of A | A-LRN | B, non-empty]
"""


@pytest.mark.parametrize("key, value, allowed, shown", [
    ("act", "gelu", "str, one of relu, tanh", '"gelu" (str)'),
    ("configs", ["A", "E"], "list[str], each one of A, A-LRN, B, non-empty", '["A", "E"] (list)'),
    ("configs", [], "list[str], each one of A, A-LRN, B, non-empty", "[] (list)"),
])
def test_a_name_not_among_those_declared_is_refused_before_a_kernel(toy_root, key, value, allowed, shown):
    use_specified(toy_root, NAMED)
    assert params.resolve(load_toy(), "quick", {"act": "tanh", "configs": ["A-LRN"]})["configs"] == ["A-LRN"]
    message = raises_one_line(lambda: params.resolve(load_toy(), "quick", {key: value}))
    assert message == f"params/99_toy.yaml: -p: key '{key}' must be {allowed}, got {shown}"


def test_one_of_is_for_str_parameters_only(toy_root):
    use_specified(toy_root, SPECIFIED.replace("[at least 1]\nwidths", "[one of 1 | 3]\nwidths"))
    raises_one_line(load_toy, "notebooks/99_toy.ipynb: parameter 'n_seeds': 'one of 1 | 3' is for str parameters, "
                              "not int")


# -- maxima on sizes ------------------------------------------------------------------------------------------------

# Per experiment, the parameters that scale memory or the size of arrays (image and canvas counts, widths, depths,
# batch sizes, image and canvas sides, items per canvas): each has an `at most` bound (README, "Sizes have maxima").
BOUNDED_SIZES = {
    "01_architecture_arithmetic": (),  # its grid values enter only shape arithmetic: no array grows with them
    "02_init_variance": ("probe_images", "mlp_depth", "mlp_width", "cnn_depth", "cnn_filters", "tanh_depth",
                         "tanh_width", "train_depths", "train_images", "batch_size"),
    "03_nonlinearities": ("stages", "kernel_size", "batch_size", "probe_images", "activity_images", "sweep_depths",
                          "sweep_kernel_size"),
    "04_vgg_depth": ("n_train", "held_out", "n_test", "train_eval_images", "fc_units", "batch_size", "sweep_n_train",
                     "sweep_test_images"),
    "05_googlenet_gap": ("backbone_widths", "deeper_widths", "n_train", "held_out", "n_test", "n_monitor",
                         "train_eval_images", "fc_units", "batch_size", "sweep_last_widths"),
    "06_resnet": ("count_depths", "depths", "n_train", "held_out", "batch_size", "n_test", "lesion_images",
                  "gradient_images"),
    "07_tricks": ("n_test", "n_val", "stages", "n_train", "bn_batch_size", "sigmoid_depth", "sigmoid_filters",
                  "mlp_width", "dropout_n_train", "dropout_batch_size", "augment_n_train", "augment_batch_size",
                  "lr_batch_size"),
    "08_transfer_learning": ("image_size", "conv_filters", "fc_units", "source_images", "target_images", "val_images",
                             "n_test", "sizes_per_class", "batch_size"),
    "09_fcn_segmentation": ("classifier_images", "speed_sizes", "canvas_size", "max_items", "n_train", "n_test",
                            "widths", "fc_units", "batch_size", "shown"),
    "10_visualisation": ("train_images", "widths", "dense_units", "kernel_size", "patch_images", "top", "canvas_size",
                         "canvas_train", "canvas_batch", "occluded", "equivariance_images"),
}
# a new parameter named like a size must be bounded too, or named here with the reason it needs no maximum
SIZE_NAME = re.compile(r"images|width|units|filters|depth|batch|canvas|items|stages|size|n_train|n_test|n_val|"
                       r"held_out|n_monitor|occluded|shown|^top$|patches")
NOT_SIZES = {"grid_widths": "01's output-size formula, no arrays", "width_divisor": "divides the widths",
             "max_patches": "capped at the image's pixels; it scales time", "canvas_steps": "training steps"}


def test_every_size_has_a_maximum_and_a_size_past_it_is_refused_before_a_kernel(tmp_path, monkeypatch, capsys):
    experiments = {exp.name: exp for exp in params.discover()}  # every profile's values within their bounds
    assert set(experiments) == set(BOUNDED_SIZES)
    for name, exp in experiments.items():
        numeric = {key for key, spec in exp.specs.items() if re.fullmatch(r"(list\[)*(int|float)\]*", spec.type)}
        named_like_sizes = {key for key in numeric if SIZE_NAME.search(key) and key not in NOT_SIZES}
        unlisted = sorted(named_like_sizes - set(BOUNDED_SIZES[name]))
        assert not unlisted, f"{name}: {unlisted} look like sizes; give them a maximum and list them here"
        for key in BOUNDED_SIZES[name]:
            maxima = [bound for op, bound in exp.specs[key].bounds if op in ("at most", "below")]
            assert maxima and math.isfinite(min(maxima)), f"{name}: '{key}' has no maximum"
    # a typo in a width is one line naming the bound, before a kernel starts or anything is written
    for folder, suffix in (("notebooks", ".ipynb"), ("params", ".yaml")):
        (tmp_path / folder).mkdir()
        shutil.copy(getattr(paths, folder.upper()) / f"02_init_variance{suffix}", tmp_path / folder)
    use_workspace(monkeypatch, tmp_path)
    monkeypatch.setattr(runner, "execute", lambda *args, **kwargs: pytest.fail("a kernel started"))
    assert main(["run", "02", "-p", "tanh_width=1000000"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == ("cnnlab: error: params/02_init_variance.yaml: -p: key 'tanh_width' must be int, "
                                 "at least 1 and at most 4096, got 1000000 (int)\n")
    assert not (tmp_path / "results").exists()


# -- complete profiles ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("exp", params.discover(), ids=lambda e: e.name)
def test_every_profile_lists_every_value_it_runs_with_and_quick_is_the_notebooks_defaults(exp):
    declared = [key for key in exp.defaults if key not in params.RUNNER_KEYS]
    for profile in params.PROFILES:
        assert list(exp.profiles[profile]) == declared, f"{exp.name}: profile {profile} lists other keys"
    quick = params.resolve(exp, "quick")
    assert {key: quick[key] for key in declared} == {key: exp.defaults[key] for key in declared}


@pytest.mark.parametrize("name, override, message", [
    ("03", {"sweep_depths": [3]}, "params/03_nonlinearities.yaml: 3 weight layers cannot hold 3 conv stages and the "
                                  "classifier; allowed: at least 4"),
    ("04", {"sweep_configs": ["D"]}, "params/04_vgg_depth.yaml: sweep_configs must hold A, the net the deeper ones "
                                     "are compared with; got ['D']"),
    ("08", {"conv_filters": [4, 4]}, "params/08_transfer_learning.yaml: conv_filters needs the five conv layers' "
                                     "filters, got 2: [4, 4]"),
])
def test_rules_between_parameters_are_the_experiment_modules_and_refuse_before_a_kernel(name, override, message):
    exp = params.find(name)
    params.resolve(exp, "smoke")  # the profile itself passes
    with pytest.raises(ParamError) as info:
        params.resolve(exp, "smoke", override)
    assert str(info.value) == message
