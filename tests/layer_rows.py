"""Shape-rule rows for version 2's layer ops: ``(op, written args, input shapes, format, shape, params)``.

Counts are Keras ``count_params()``, worked out by hand beside each row;
tests/test_ops_layers.py builds every row's Keras layer and compares.
"""

from __future__ import annotations

CL, CF = "channels_last", "channels_first"
N = None

ACTS = ("relu6", "hard_silu", "hard_swish", "silu", "mish", "hard_tanh", "log_sigmoid", "tanh_shrink",
        "sparse_plus", "sparse_sigmoid")

LAYER_ROWS: list[tuple[str, dict, list[tuple], str, tuple, int]] = [
    # --- layernorm: gamma and beta over the kept axes ---
    ("layernorm", dict(), [(7, 7, 96)], CL, (7, 7, 96), 2 * 96),
    ("LayerNormalization", dict(epsilon=1e-6), [(768,)], CL, (768,), 2 * 768),
    ("layernorm", dict(rms_scaling=True), [(4, 8)], CL, (4, 8), 8),                 # gamma only
    ("layernorm", dict(center=False), [(4, 8)], CL, (4, 8), 8),
    ("layernorm", dict(scale=False, center=False), [(4, 8)], CL, (4, 8), 0),
    ("layernorm", dict(axis=(1, 2)), [(3, 5, 2)], CL, (3, 5, 2), 2 * 3 * 5),         # (H, W) kept
    ("layernorm", dict(axis=1), [(6, N, N)], CF, (6, N, N), 12),
    # --- groupnorm: gamma and beta per channel ---
    ("groupnorm", dict(groups=4), [(8, 8, 16)], CL, (8, 8, 16), 2 * 16),
    ("GroupNormalization", dict(groups=2, axis=1), [(6, 5, 5)], CF, (6, 5, 5), 12),
    ("groupnorm", dict(groups=32), [(N, N, 64)], CL, (N, N, 64), 128),
    ("groupnorm", dict(groups=3, scale=False), [(9,)], CL, (9,), 9),
    # --- normalization: mean, variance and count (2C + 1), none when given ---
    ("normalization", dict(), [(224, 224, 3)], CL, (224, 224, 3), 2 * 3 + 1),
    ("Normalization", dict(axis=(1, 2)), [(4, 5, 3)], CL, (4, 5, 3), 2 * 20 + 1),
    ("normalization", dict(axis=None), [(4, 5)], CL, (4, 5), 3),                      # scalars
    ("normalization", dict(mean=(1, 2, 3), variance=(4, 5, 6)), [(8, 8, 3)], CL, (8, 8, 3), 0),
    ("normalization", dict(mean=0.5, variance=2, invert=True), [(8,)], CL, (8,), 0),
    # --- rescaling, unit_normalization, layer_scale, prelu ---
    ("rescaling", dict(scale=1 / 255), [(8, 8, 3)], CL, (8, 8, 3), 0),
    ("Rescaling", dict(scale=(0.5, 0.25, 2.0), offset=-1.0), [(8, 8, 3)], CL, (8, 8, 3), 0),
    ("unit_normalization", dict(), [(4, 6)], CL, (4, 6), 0),
    ("UnitNormalization", dict(axis=(1, 2)), [(4, 6)], CL, (4, 6), 0),
    ("layer_scale", dict(), [(7, 7, 96)], CL, (7, 7, 96), 96),
    ("layer_scale", dict(init_values=0.5), [(10,)], CL, (10,), 10),
    ("prelu", dict(), [(4, 4, 3)], CL, (4, 4, 3), 4 * 4 * 3),                         # alpha of the input's shape
    ("PReLU", dict(shared_axes=(1, 2)), [(N, N, 8)], CL, (N, N, 8), 8),
    ("prelu", dict(shared_axes=2), [(5, 7)], CL, (5, 7), 5),
    # --- merges broadcast as Keras's: shorter shapes align on the right ---
    ("subtract", dict(), [(4, 4, 8), (4, 4, 8)], CL, (4, 4, 8), 0),
    ("average", dict(), [(4, 4, 8), (1, 1, 8), (4, 4, 8)], CL, (4, 4, 8), 0),
    ("maximum", dict(), [(6, 6, 4), (4,)], CL, (6, 6, 4), 0),
    ("minimum", dict(), [(N, 4), (3, 1, 4)], CL, (3, N, 4), 0),
    ("multiply", dict(), [(6, 6, 4), (4,)], CL, (6, 6, 4), 0),                         # issue 9, item 9
    ("add", dict(constants=((1, 3.0),)), [(6, 6, 4)], CL, (6, 6, 4), 0),               # add(x, 3)
    # --- noise and dropouts (identity at inference), permute ---
    ("spatial_dropout1d", dict(rate=0.2), [(10, 4)], CL, (10, 4), 0),
    ("SpatialDropout2D", dict(rate=0.2), [(8, 8, 4)], CL, (8, 8, 4), 0),
    ("spatial_dropout3d", dict(rate=0.2), [(4, 4, 4, 2)], CL, (4, 4, 4, 2), 0),
    ("gaussian_noise", dict(stddev=0.1), [(8,)], CL, (8,), 0),
    ("GaussianDropout", dict(rate=0.3), [(8,)], CL, (8,), 0),
    ("alpha_dropout", dict(rate=0.1), [(8,)], CL, (8,), 0),
    ("permute", dict(dims=(2, 1)), [(3, 5)], CL, (5, 3), 0),
    ("Permute", dict(dims=(3, 1, 2)), [(4, 5, 6)], CL, (6, 4, 5), 0),
    # --- activations ---
    *[(op, dict(), [(2, 3, 4)], CL, (2, 3, 4), 0) for op in ACTS],
    ("log_softmax", dict(axis=1), [(3, 4)], CL, (3, 4), 0),
    ("sparsemax", dict(), [(5,)], CL, (5,), 0),
    ("glu", dict(), [(4, 8)], CL, (4, 4), 0),                                          # halves the last axis
    ("glu", dict(axis=1), [(6, 3)], CL, (3, 3), 0),
    ("celu", dict(alpha=0.5), [(4,)], CL, (4,), 0),
    ("soft_shrink", dict(threshold=0.2), [(4,)], CL, (4,), 0),
    ("hard_shrink", dict(), [(4,)], CL, (4,), 0),
    ("squareplus", dict(b=1), [(4,)], CL, (4,), 0),
    ("threshold", dict(threshold=0.1, default_value=-1), [(4,)], CL, (4,), 0),
    ("activation", dict(activation="glu"), [(3, 6)], CL, (3, 3), 0),
    ("conv2d", dict(filters=8, kernel_size=1, activation="glu"), [(4, 4, 2)], CL, (4, 4, 4), 2 * 8 + 8),
]

#: Written arguments for tests/test_roundtrip.py's cover of the op table (on a (3, 8, 8) input).
ROUND_TRIP_ARGS: dict[str, dict] = {
    "groupnorm": dict(groups=2), "rescaling": dict(scale=(0.5,) * 8, offset=1), "spatial_dropout2d": dict(rate=0.2),
    "gaussian_noise": dict(stddev=0.1), "gaussian_dropout": dict(rate=0.1), "alpha_dropout": dict(rate=0.1),
    "permute": dict(dims=(3, 1, 2)), "threshold": dict(threshold=0.5, default_value=-1), "celu": dict(alpha=2),
    "normalization": dict(axis=(1, 2)), "prelu": dict(shared_axes=(1,)), "layernorm": dict(rms_scaling=True),
    "add": dict(constants=((1, 2.5),)),
}
#: Ops that need an input of another rank: round-tripped in tests/test_ops_layers.py.
ROUND_TRIP_ELSEWHERE = frozenset({"spatial_dropout1d", "spatial_dropout3d"})
