"""The broken versions of gnntrack that the default test run must catch (issue 19).

Each mutation replaces exact text in one file; `scripts/mutation_check.sh` applies it to a
temporary copy of the repository and runs the tests, first the ones named in `tests`, then
the rest. A mutation whose `old` text no longer occurs exactly once is stale: the check (and
`tests/test_mutations.py`) then fails loudly, so a refactor updates the mutation with it.

To add one when you add a behaviour: break that behaviour the way a plausible bug would,
name the test that should notice, and run `./scripts/mutation_check.sh --only NAME`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutation:
    """A plausible bug: `edits` (old text, new text) in `file`, and the tests that catch it."""

    name: str
    why: str
    file: str
    edits: tuple[tuple[str, str], ...]
    tests: tuple[str, ...]


EVENTS = "tests/test_lineage_events.py"

MUTATIONS: tuple[Mutation, ...] = (
    Mutation(
        "tracker-never-divides",
        "the shipped SIM+ tracker's division cost is prohibitive: no cell ever divides",
        "parameters/Fluo-N2DH-SIM+/tracker/config.json",
        (('"division_cost": 2.0,', '"division_cost": 1000000000.0,'),),
        (f"{EVENTS}::test_shipped_trackers_divide_and_bridge_the_gap",),
    ),
    Mutation(
        "solver-ignores-gap-cost",
        "a link across a missed frame is taken whenever its logit is positive",
        "inference/tracking/solve.py",
        (("gap.logit - params.gap_cost]", "gap.logit]"),),
        ("tests/test_solve.py::test_the_solution_is_the_brute_force_optimum",),
    ),
    Mutation(
        "gap-source-bridges-twice",
        "a cell of t-1 may bridge a gap to two cells of t+1 (a second row, as for divisions)",
        "inference/tracking/solve.py",
        (
            ("base + gap.src])", "base + gap.src, base + 10**6 + gap.src])"),
            ("[links.dst, links.dst, gap.dst]", "[links.dst, links.dst, gap.dst, gap.dst]"),
            (
                "gap.logit - params.gap_cost]",
                "gap.logit - params.gap_cost, gap.logit - params.gap_cost]",
            ),
            (
                "picked_rows >= base, picked_rows - base,",
                "picked_rows >= base, (picked_rows - base) % 10**6,",
            ),
        ),
        ("tests/test_solve.py::test_the_solution_is_the_brute_force_optimum",),
    ),
    Mutation(
        "no-gap-bridging",
        "track.py never offers the solver the links from frame t-2: a missed cell breaks its track",
        "inference/tracking/stream.py",
        (("links(t - 2, 2) if t >= 2 else Links.empty(),", "Links.empty(),"),),
        (f"{EVENTS}::test_shipped_trackers_divide_and_bridge_the_gap",),
    ),
    Mutation(
        "segmenter-finds-nothing",
        "gnntrack run / segment get empty masks from the segmenter",
        "inference/segmentation/segmenter.py",
        (
            (
                "yield segmenter.labels(list(window), frame.shape)",
                "yield np.zeros(frame.shape, np.uint16)",
            ),
        ),
        (
            f"{EVENTS}::test_run_with_the_shipped_models_finds_cells_divisions_and_tracks",
            "tests/test_track.py::test_run_segments_and_tracks",
        ),
    ),
    Mutation(
        "evaluate-sh-scores-gt-against-gt",
        "evaluate.sh scores the GT (exported as a result) instead of SEQ_RES",
        "scripts/evaluate.sh",
        (
            (
                'exec "$gnntrack" evaluate "$res" "$gt" "$@"',
                'tmp="$(mktemp -d)"\n"$gnntrack" export-gt "$gt" --out "$tmp/res" >/dev/null\n'
                'exec "$gnntrack" evaluate "$tmp/res" "$gt" "$@"',
            ),
        ),
        ("tests/test_run_scripts.py::test_evaluate_scores_the_result_against_the_gt",),
    ),
    Mutation(
        "selftest-ignores-scores",
        "the image's selftest prints the scores but never fails on them",
        "containers/entrypoint.sh",
        (("    low += [] if ok else [name]", "    low += []"),),
        ("tests/test_containers.py::test_entrypoint_selftest_fails_on_low_scores",),
    ),
    Mutation(
        "z-scale-dropped",
        "train-tracker ignores --z-scale: 3D distances are measured in slices, not pixels",
        "training/cli/train_tracker.py",
        (("cfg.spacing = (z_scale, 1.0, 1.0)", "pass"),),
        ("tests/test_tracking_training.py::test_3d_models_track_an_unseen_sequence",),
    ),
    Mutation(
        "movie-3d-middle-slice",
        "3D movies show the middle slice instead of the maximum projection",
        "inference/report/overlay_movie.py",
        (
            (
                "return array.max(axis=0) if array.ndim == 3 else array",
                "return array[array.shape[0] // 2] if array.ndim == 3 else array",
            ),
        ),
        ("tests/test_report.py::test_movie_of_a_3d_sequence_is_a_max_projection",),
    ),
    Mutation(
        "validator-parent-order-off-by-one",
        "the validator accepts a parent that ends in the frame its child begins",
        "inference/ctc_rules.py",
        (
            (
                "elif parent and declared[parent].end >= begin:",
                "elif parent and declared[parent].end > begin:",
            ),
        ),
        ("tests/test_validate.py::test_validator_agrees_with_py_ctcmetrics",),
    ),
    Mutation(
        "tiles-ignore-their-overlap",
        "each tile's share starts at its own border, where the network sees no context",
        "seg_code/predict.py",
        (("bounds.append((b + a + tile) // 2)", "bounds.append(b)"),),
        ("tests/test_seg_code.py::test_tiled_prediction_along_z",),
    ),
    Mutation(
        "masks-at-network-resolution",
        "a model run at scale 0.5 returns half-size masks (probabilities not resampled back)",
        "inference/segmentation/segmenter.py",
        (("        return resample(p, shape)", "        return p"),),
        ("tests/test_shipped_segmenters.py::test_half_resolution_models_segment_at_full_size",),
    ),
    Mutation(
        "segmenter-ignores-scale",
        "the network sees the frame at full size whatever the model's scale (4x the work)",
        "inference/segmentation/segmenter.py",
        (
            (
                "return resample(image[None], scaled_shape(image.shape, self.scale))[0]",
                "return image",
            ),
        ),
        ("tests/test_shipped_segmenters.py::test_half_resolution_models_segment_at_full_size",),
    ),
    Mutation(
        "no-scale-adaptation",
        "a run segments cells of another size at the trained scale (GOWT1 at 0.75x: SEG 0.47)",
        "inference/segmentation/adapt.py",
        (("    adapt_scale_to(frames, segmenter, name, cache=cache)\n", ""),),
        ("tests/test_look.py::test_segment_says_when_it_adapts_the_scale",),
    ),
    Mutation(
        "run-script-deletes-every-tmp",
        "the run script's exit removes every .SEQ_RES.tmp-*, a concurrent run's work included",
        "scripts/ctc_run.sh",
        (
            (
                '    rm -rf "$scratch"\n',
                '    rm -rf "$scratch"\n    rm -rf "$data/$dataset/.${seq}_RES.tmp-"*\n',
            ),
        ),
        (
            "tests/test_run_scripts.py::"
            "test_a_second_script_on_the_same_sequence_refuses_and_spares_the_first",
        ),
    ),
    Mutation(
        "cut-cells-not-joined",
        "the repair of cut cells is off by default: a cell cut for a frame becomes a division",
        "inference/tracking/repair/params.py",
        (
            (
                "merge_cuts: bool = setting(flag(), True)",
                "merge_cuts: bool = setting(flag(), False)",
            ),
        ),
        ("tests/test_repair.py::test_a_cell_cut_for_one_frame_stays_one_track_without_a_division",),
    ),
    Mutation(
        "merged-cells-not-split",
        "the repair of merged cells is off by default: two cells merged for a frame lose a track"
        " and the object divides back into them",
        "inference/tracking/repair/params.py",
        (
            (
                "split_merges: bool = setting(flag(), True)",
                "split_merges: bool = setting(flag(), False)",
            ),
        ),
        (
            "tests/test_repair.py::"
            "test_two_cells_merged_for_one_frame_stay_two_tracks_and_get_their_pixels_back",
        ),
    ),
    Mutation(
        "rejected-division-kept-parent",
        "a division the division model rejects keeps its second daughter's parent: the "
        "division is half undone, the neighbour still a daughter",
        "inference/tracking/repair/held.py",
        (
            (
                "            if parent in self.removed or track.label in self.unparented:",
                "            if parent in self.removed:",
            ),
        ),
        (
            "tests/test_division.py::"
            "test_repairs_undo_the_division_the_model_rejects_and_keep_the_mitosis",
        ),
    ),
    Mutation(
        "noisy-sequence-not-smoothed",
        "a run measures how much noisier its sequence is and logs the smoothing, but segments "
        "the frames unsmoothed",
        "inference/segmentation/segmenter.py",
        (
            (
                "            frame = smooth(frame, self.smoothing / self.scale)",
                "            frame = np.asarray(frame)",
            ),
        ),
        (
            "tests/test_denoise.py::"
            "test_a_run_smooths_a_sequence_noisier_than_the_model_knows_and_says_so",
        ),
    ),
    Mutation(
        "contrast-cap-not-applied",
        "a run measures the typical cell and logs the contrast cap, but normalises every frame "
        "by its full percentile range",
        "seg_code/normalize.py",
        (("        scale = min(scale, max_range)", "        scale = max(scale, max_range)"),),
        (
            "tests/test_contrast.py::"
            "test_a_run_caps_the_range_of_dim_cells_among_bright_ones_finds_them_and_says_so",
        ),
    ),
    Mutation(
        "contrast-cap-cuts-a-blurred-sequence",
        "a run caps the contrast range even where the cap multiplies the objects it finds "
        "(its typical cell was background): a blurred sequence is cut into pieces",
        "inference/segmentation/adapt.py",
        (
            (
                "        if capped > CAP_MAX_GROWTH * max(found, 1):",
                "        if capped > 1e9 * max(found, 1):",
            ),
        ),
        (
            "tests/test_contrast.py::"
            "test_gowt1s_cap_recovers_dim_nuclei_but_refuses_to_cut_a_blurred_sequence",
        ),
    ),
    Mutation(
        "rescale-cuts-objects",
        "a run keeps a rescale even where it multiplies the objects found (pieces of cells "
        "measured as small cells are cut into more pieces)",
        "inference/segmentation/adapt.py",
        (
            (
                "        if rescaled > SCALE_MAX_GROWTH * found:",
                "        if rescaled > 1e9 * found:",
            ),
        ),
        ("tests/test_look.py::test_a_rescale_that_cuts_the_objects_into_more_is_undone",),
    ),
    Mutation(
        "mask-cache-blind-to-the-cap",
        "the run-start mask cache keys its masks without the contrast cap: the cap guard "
        "compares the uncapped masks with themselves and never refuses a cap",
        "inference/segmentation/adapt.py",
        (("            segmenter.max_range,\n", ""),),
        (
            "tests/test_contrast.py::"
            "test_the_adaptations_segment_each_setting_of_the_sampled_frames_once",
        ),
    ),
    Mutation(
        "cut-join-blind-to-earlier-repairs",
        "a lasting piece of a cut cell is joined only to a track the repairs never touched: "
        "a cell whose missed frame was filled in counts its own continuation as a child",
        "inference/tracking/repair/cuts.py",
        (
            (
                "for k in self.children.get(raw, []) if self.find(k) != label]",
                "for k in self.children.get(raw, [])]",
            ),
        ),
        (
            "tests/test_repair.py::"
            "test_a_cell_filled_over_a_missed_frame_and_later_cut_stays_one_track",
        ),
    ),
    Mutation(
        "end-rule-undoes-outgrowing-daughters",
        "in the last frames two daughters born touching are taken for a cut however much "
        "more than their mother they are (the simulator's 3D divisions at the end undone)",
        "inference/tracking/repair/cuts.py",
        (
            (
                "if both.sum() > CUT_GROWTH * self._grown_area(mother, frame):",
                "if both.sum() > 1e9 * self._grown_area(mother, frame):",
            ),
        ),
        (
            "tests/test_repair.py::"
            "test_two_halves_born_joined_in_the_last_frame_are_a_cut_unless_they_outgrow_her",
        ),
    ),
    Mutation(
        "candidate-chosen-with-its-cells-linked",
        "the solver may choose a candidate group (a union, a split) and still link the cells "
        "it replaces: one cell counted twice or three times",
        "inference/tracking/solve.py",
        (
            (
                "a[n_r + np.searchsorted(c_ids, cell), n_e + g] = 1",
                "a[n_r + np.searchsorted(c_ids, cell), n_e + g] = 0",
            ),
        ),
        (
            "tests/test_candidates.py::"
            "test_the_choice_of_candidates_and_links_is_the_brute_force_optimum",
        ),
    ),
    Mutation(
        "union-written-as-one-piece",
        "a chosen union's label is written on its first piece only: the other piece of the "
        "cut cell becomes background",
        "inference/tracking/merged.py",
        (("            out[old[old >= 0]] = label", "            out[old[0]] = label"),),
        ("tests/test_candidates.py::test_a_cell_cut_for_one_frame_is_linked_whole_by_the_solver",),
    ),
    Mutation(
        "split-written-as-one-cell",
        "a chosen split's halves are not painted: the fused object is written as one cell "
        "under its first half's label",
        "inference/tracking/merged.py",
        (("        mask[merged.index == value] = label\n", ""),),
        (
            "tests/test_candidates.py::"
            "test_two_cells_fused_for_three_frames_are_split_again_by_the_solver",
        ),
    ),
    Mutation(
        "border-entry-kept-as-daughter",
        "a cell entering the field beside another, taken for her daughter, keeps that "
        "parent: the division the repair undid is written anyway",
        "inference/tracking/repair/entries.py",
        (("        self.unparented.add(small)\n", ""),),
        ("tests/test_repair.py::test_a_cell_entering_the_field_is_not_taken_for_a_daughter",),
    ),
)
