"""Vectorised scoring of a fitted HistGradientBoostingClassifier: the same numbers, a fraction of the time.

scikit-learn walks every tree row by row over the whole float64 matrix (one pass per tree, each row
touching its cache lines again), and since 1.4 it re-encodes the categorical columns on every call.
On 100k rows that was ~75% of batch inference. Here the trees are compiled once into column-wise
operations: each split becomes one comparison (numeric) or one table lookup (categorical) over a
block of rows, shared by every node that asks the same question; a row's leaf follows from the
boolean "reaches this node" masks. Tree values are added in scikit-learn's order, in float64, so the
raw scores are the same to the last bit, and the probability is the same logistic function.

The compiler reads the fitted model's tree arrays (`_predictors`, the bitsets of its bin mapper and,
on scikit-learn >= 1.4, the internal ordinal re-encoding): private structures, stable from 1.2 to
1.9 but not promised. So `compile_model` only returns a scorer after checking it against
scikit-learn's own `predict_proba` on probe rows covering every threshold, category, unknown and
missing value; anything unexpected (another estimator, multi-class, a changed layout) returns None
and the caller keeps scikit-learn's path.
"""

from collections.abc import Mapping
from typing import Any, NamedTuple, Optional

import numpy as np
from threadpoolctl import threadpool_limits

# Rows per block: the per-node boolean masks of a block stay in cache, memory stays bounded.
BLOCK_ROWS = 32768
# Probe rows for the equivalence check (random combinations of the values that matter).
PROBE_ROWS = 2048
# Compiled and scikit-learn probabilities must agree this closely (they agree exactly in practice).
TOLERANCE = 1e-12


def _in_bitset(bitsets: np.ndarray, row: int, values: np.ndarray) -> np.ndarray:
    """scikit-learn's bitset test for many values: 8 uint32 words cover category values 0..255."""
    inside = (values >= 0) & (values < 256)
    safe = np.where(inside, values, 0).astype(np.int64)
    words = bitsets[row].astype(np.int64)[safe // 32]
    return inside & (((words >> (safe % 32)) & 1) == 1)


class _Tree:
    """One tree: its splits in pre-order and its leaf values left to right.

    A split is (node, condition id, left child, right child, leaves in its left subtree); a child
    that is a leaf is -1 (nothing below it to route).
    """

    def __init__(self, splits: list[tuple[int, int, int, int, int]], values: list[float]) -> None:
        self.splits = splits
        self.values = np.asarray(values, dtype=np.float64)
        self.index_dtype = np.uint8 if len(values) <= 255 else np.uint32


class CompiledClassifier:
    """A binary HistGradientBoosting model as column-wise operations on the encoder's matrix.

    `columns` (our matrix columns), `categorical_sizes` (column -> number of codes; code k means
    missing), `conditions` (column, kind, threshold or lookup table, missing-goes-left), `trees`.
    """

    def __init__(
        self,
        baseline: float,
        conditions: list[tuple[int, str, Any, bool]],
        trees: list[_Tree],
        categorical_sizes: Mapping[int, int],
    ) -> None:
        self.baseline = baseline
        self.conditions = conditions
        self.trees = trees
        self.categorical_sizes = dict(categorical_sizes)

    def raw_predict(self, X: np.ndarray) -> np.ndarray:
        """The summed tree values (log-odds) per row, in scikit-learn's summation order."""
        X = np.asarray(X, dtype=np.float64)
        out = np.empty(len(X), dtype=np.float64)
        for start in range(0, len(X), BLOCK_ROWS):
            block = X[start : start + BLOCK_ROWS]
            out[start : start + len(block)] = self._raw_block(block)
        return out

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """(n, 2) probabilities, as HistGradientBoostingClassifier.predict_proba returns them."""
        from scipy.special import expit

        positive = expit(self.raw_predict(X))
        return np.column_stack([1.0 - positive, positive])

    def _raw_block(self, block: np.ndarray) -> np.ndarray:
        n = len(block)
        codes: dict[int, np.ndarray] = {}
        missing: dict[int, Optional[np.ndarray]] = {}
        conditions: list[Optional[np.ndarray]] = [None] * len(self.conditions)

        def condition(index: int) -> np.ndarray:
            known = conditions[index]
            if known is not None:
                return known
            column, kind, rule, missing_left = self.conditions[index]
            values = block[:, column]
            if kind == "categorical":
                if column not in codes:
                    size = self.categorical_sizes[column]
                    # Missing, negative and out-of-range codes all read the table's last slot.
                    invalid = ~((values >= 0) & (values < size))
                    codes[column] = np.where(invalid, size, values).astype(np.intp)
                result = rule[codes[column]]
            else:
                result = values <= rule
                if missing_left:
                    if column not in missing:
                        nan = np.isnan(values)
                        missing[column] = nan if nan.any() else None
                    if missing[column] is not None:
                        result |= missing[column]
            conditions[index] = result
            return result

        total = np.full(n, self.baseline, dtype=np.float64)
        for tree in self.trees:
            # A row's leaf number (leaves numbered left to right) is the sum, over the splits on
            # its path where it went right, of the leaves left of that split: boolean masks and
            # small-integer adds only, then one lookup of the leaf values.
            leaf = np.zeros(n, dtype=tree.index_dtype)
            reach: dict[int, Optional[np.ndarray]] = {0: None}
            for node, cond, left, right, skipped in tree.splits:
                mask = reach.pop(node)
                goes_left = condition(cond)
                if mask is None:
                    left_mask, right_mask = goes_left, ~goes_left
                else:
                    left_mask = mask & goes_left
                    right_mask = mask ^ left_mask
                if left >= 0:
                    reach[left] = left_mask
                if right >= 0:
                    reach[right] = right_mask
                leaf += right_mask.view(np.uint8) * tree.index_dtype(skipped)
            total += tree.values[leaf]
        return total


def _leaf_counts(nodes: np.ndarray) -> list[int]:
    """Leaves under each node (a leaf counts itself), children before parents."""
    counts = [0] * len(nodes)
    order, stack = [], [0]
    while stack:
        index = stack.pop()
        order.append(index)
        if not nodes[index]["is_leaf"]:
            stack.extend((int(nodes[index]["left"]), int(nodes[index]["right"])))
    for index in reversed(order):
        node = nodes[index]
        counts[index] = 1 if node["is_leaf"] else counts[int(node["left"])] + counts[int(node["right"])]
    return counts


def _feature_layout(model: Any, n_columns: int) -> Optional[list[tuple[int, Optional[dict[int, int]]]]]:
    """For each model feature: our matrix column, and for re-encoded categoricals our code -> its code.

    scikit-learn < 1.4 uses the matrix as given; >= 1.4 puts categorical columns first through an
    internal OrdinalEncoder (categories sorted) and passes numeric ones through.
    """
    preprocessor = getattr(model, "_preprocessor", None)
    if preprocessor is None:
        return [(c, None) for c in range(n_columns)]
    from sklearn.preprocessing import FunctionTransformer, OrdinalEncoder

    layout: list[tuple[int, Optional[dict[int, int]]]] = []
    for _name, transformer, selection in preprocessor.transformers_:
        if isinstance(transformer, str):
            if transformer == "drop":
                continue
            return None
        selected = np.asarray(selection)
        columns = list(np.flatnonzero(selected)) if selected.dtype == bool else [int(c) for c in selected]
        if isinstance(transformer, OrdinalEncoder):
            for column, categories in zip(columns, transformer.categories_):
                mapping = {}
                for position, category in enumerate(np.asarray(categories, dtype=float)):
                    if not np.isnan(category):
                        mapping[int(category)] = position
                layout.append((int(column), mapping))
        elif isinstance(transformer, FunctionTransformer):
            layout.extend((int(c), None) for c in columns)
        else:
            return None
    return layout


def _compile(
    model: Any, categorical_sizes: Mapping[int, int], n_columns: int
) -> Optional[CompiledClassifier]:
    """The compiled form, or None when the model is not one this module understands."""
    predictors = getattr(model, "_predictors", None)
    if predictors is None or getattr(model, "n_trees_per_iteration_", None) != 1:
        return None
    layout = _feature_layout(model, n_columns)
    if layout is None:
        return None
    known_bitsets, feature_map = model._bin_mapper.make_known_categories_bitsets()
    keys: dict[Any, int] = {}
    conditions: list[tuple[int, str, Any, bool]] = []

    def condition_id(key: Any, spec: tuple[int, str, Any, bool]) -> int:
        if key not in keys:
            keys[key] = len(conditions)
            conditions.append(spec)
        return keys[key]

    mapped: dict[int, np.ndarray] = {}
    trees = []
    for iteration in predictors:
        (predictor,) = iteration
        nodes = predictor.nodes
        splits: list[tuple[int, int, int, int, int]] = []
        values: list[float] = []
        leaf_counts = _leaf_counts(nodes)

        stack = [0]
        while stack:
            index = stack.pop()
            node = nodes[index]
            if node["is_leaf"]:
                values.append(float(node["value"]))
                continue
            feature = int(node["feature_idx"])
            column, mapping = layout[feature]
            missing_left = bool(node["missing_go_to_left"])
            if node["is_categorical"]:
                size = categorical_sizes.get(column)
                if size is None:
                    return None
                if column not in mapped:
                    codes = range(size)
                    mapped[column] = np.array([c if mapping is None else mapping.get(c, -1) for c in codes])
                categories = mapped[column]
                left = _in_bitset(predictor.raw_left_cat_bitsets, int(node["bitset_idx"]), categories)
                known = _in_bitset(known_bitsets, int(feature_map[feature]), categories)
                # Unseen or invalid categories count as missing (scikit-learn's rule).
                table = np.empty(size + 1, dtype=bool)
                table[:size] = np.where(left, True, np.where(known, False, missing_left))
                table[size] = missing_left
                cond = condition_id(
                    ("c", column, table.tobytes()), (column, "categorical", table, missing_left)
                )
            else:
                threshold = float(node["num_threshold"])
                cond = condition_id(
                    ("n", column, threshold, missing_left), (column, "numeric", threshold, missing_left)
                )
            left, right = int(node["left"]), int(node["right"])
            splits.append(
                (
                    index,
                    cond,
                    -1 if nodes[left]["is_leaf"] else left,
                    -1 if nodes[right]["is_leaf"] else right,
                    leaf_counts[left],
                )
            )
            # Pre-order, left subtree first: leaves are met (and numbered) left to right.
            stack.extend((right, left))
        trees.append(_Tree(splits, values))
    baseline = float(np.asarray(model._baseline_prediction).ravel()[0])
    return CompiledClassifier(baseline, conditions, trees, categorical_sizes)


def probe_matrix(compiled: CompiledClassifier, n_columns: int, seed: int = 0) -> np.ndarray:
    """Rows mixing, per column, every threshold (and its neighbours), every code, unknown and NaN."""
    candidates: dict[int, set[float]] = {c: {np.nan} for c in range(n_columns)}
    for column, size in compiled.categorical_sizes.items():
        candidates[column].update(float(v) for v in range(-1, size + 2))
    for column, kind, rule, _missing_left in compiled.conditions:
        if kind == "numeric":
            candidates[column].update(
                (
                    rule,
                    float(np.nextafter(rule, -np.inf)),
                    float(np.nextafter(rule, np.inf)),
                    rule - 1,
                    rule + 1,
                )
            )
    rng = np.random.RandomState(seed)
    probe = np.empty((PROBE_ROWS, n_columns), dtype=np.float64)
    for column in range(n_columns):
        values = np.array(sorted(candidates[column], key=lambda v: (np.isnan(v), v)), dtype=np.float64)
        probe[:, column] = values[rng.randint(len(values), size=PROBE_ROWS)]
    return probe


def compile_model(
    model: Any, categorical_sizes: Mapping[int, int], n_columns: int
) -> Optional[CompiledClassifier]:
    """A verified compiled scorer for a fitted binary HistGradientBoostingClassifier, else None.

    `categorical_sizes`: for each categorical column of the matrix, how many codes the encoder emits
    (0..k-1; anything else counts as missing). The scorer is returned only when it reproduces the
    model's own predict_proba on probe rows (within TOLERANCE).
    """
    from sklearn.ensemble import HistGradientBoostingClassifier

    if not isinstance(model, HistGradientBoostingClassifier) or len(getattr(model, "classes_", ())) != 2:
        return None
    try:
        compiled = _compile(model, categorical_sizes, n_columns)
        if compiled is None:
            return None
        probe = probe_matrix(compiled, n_columns)
        # One thread: 2,048 rows gain nothing from OpenMP, and a busy core would stall its barrier.
        with threadpool_limits(limits=1):
            expected = model.predict_proba(probe)
        if np.max(np.abs(compiled.predict_proba(probe) - expected)) > TOLERANCE:
            return None
    except (AttributeError, KeyError, IndexError, TypeError, ValueError):
        return None
    return compiled


class PipelineScorer:
    """`pipeline.predict_proba(frame)[:, 1]`, through the compiled trees when the pipeline allows.

    Applies to the HistGradientBoosting pipelines of pipelines/estimators.py (features -> encode ->
    model); any other pipeline, or a model the compiler does not reproduce exactly, is scored by
    scikit-learn as before. `compiled` says which path is taken.
    """

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline
        self.compiled = compile_pipeline(pipeline)

    def positive_probability(self, frame: Any) -> np.ndarray:
        if self.compiled is None:
            return self.pipeline.predict_proba(frame)[:, 1]
        matrix = self.pipeline[:-1].transform(frame)
        return self.compiled.predict_proba(matrix)[:, 1]

    def probability_and_features(self, frame: Any) -> tuple[np.ndarray, "Prepared"]:
        """`positive_probability` and what the pipeline prepared on the way, computed once for both:
        the `features` step's frame (what drift counts) and, for features -> encode -> model, the
        encoder's matrix (its category codes spare drift a lookup per row)."""
        names = [name for name, _step in getattr(self.pipeline, "steps", [])]
        if not names or names[0] != "features" or len(names) < 2:
            return self.positive_probability(frame), Prepared(None, None, None)
        features = self.pipeline.steps[0][1].transform(frame)
        if names[1] != "encode" or len(names) != 3:
            return self.pipeline[1:].predict_proba(features)[:, 1], Prepared(features, None, None)
        encoder = self.pipeline.steps[1][1]
        matrix = encoder.transform(features)
        model = self.compiled if self.compiled is not None else self.pipeline.steps[2][1]
        return model.predict_proba(matrix)[:, 1], Prepared(features, matrix, encoder)


class Prepared(NamedTuple):
    """What scoring prepared from the raw rows (None where the pipeline has no such step)."""

    features: Optional[Any]  # the `features` step's frame
    encoded: Optional[np.ndarray]  # the `encode` step's matrix, when the model reads it directly
    encoder: Optional[Any]  # that step (its categories_ name the codes)


def compile_pipeline(pipeline: Any) -> Optional[CompiledClassifier]:
    """The compiled scorer of a fitted features -> encode -> HistGradientBoosting pipeline, else None."""
    steps = getattr(pipeline, "named_steps", None)
    if steps is None or len(pipeline.steps) != 3 or "encode" not in steps or "model" not in steps:
        return None
    encoder = steps["encode"]
    try:
        numeric, categorical, categories = encoder.numeric_, encoder.categorical_, encoder.categories_
    except AttributeError:
        return None
    sizes = {len(numeric) + j: len(categories[column]) for j, column in enumerate(categorical)}
    return compile_model(steps["model"], sizes, len(numeric) + len(categorical))
