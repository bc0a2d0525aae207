/* test_schemes.c — the scheme table against the formulas of docs/design.md section 3, for
 * depths 1, 4, 12 and 24: placement per layer, LNS scales 1/sqrt(l), the Mix-LN boundary
 * floor(0.25 L), DeepNorm a = (2L)^(1/4) and b = (8L)^(-1/4), the init gains; scaled init
 * std/sqrt(2L) on o_proj and down_proj (and with LNS); DS-Init xavier-uniform times
 * 1/sqrt(l); LayerScale's eps(L) (0.1 / 1e-5 / 1e-6 by depth) and SkipInit's 0; the second
 * norm of Sandwich-LN and Peri-LN (and Peri-LN's embedding norm); DyT's alpha0 0.8 / 0.2.
 * The expected values are computed here from the papers' formulas, not read from schemes.c.
 * Also: every row is complete (label, formula, source), its constants consistent, config
 * overrides replace the derived constants and out-of-range ones are refused. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "schemes.h"

static const int depths[] = {1, 4, 12, 24};
#define N_DEPTHS ((int)(sizeof depths / sizeof depths[0]))

static SublayerSpec *table_for(const char *name, int L) {
    SchemeParams p;
    scheme_params_default(&p);
    const SchemeRow *row = scheme_find(name);
    ck_assert_msg(row != NULL, "scheme %s is in the table", name);
    SublayerSpec *specs = calloc((size_t)(2 * L), sizeof *specs);
    char err[256];
    ck_assert_int_eq(scheme_build_table(row, &p, L, specs, err, sizeof err), 0);
    return specs;
}

static void assert_unit_normal_init(const SublayerSpec *sp) {
    ck_assert_int_eq(sp->init, INIT_NORMAL);
    ck_assert_float_eq(sp->init_std, 0.02f);
    for (int r = 0; r < SUBLAYER_MAX_WEIGHTS; r++) ck_assert_float_eq(sp->init_gain[r], 1.0f);
}

START_TEST(pre_ln_is_pre_with_unit_scales_everywhere) {
    for (int d = 0; d < N_DEPTHS; d++) {
        int L = depths[d];
        SublayerSpec *t = table_for("pre_ln", L);
        for (int i = 0; i < 2 * L; i++) {
            ck_assert_int_eq(t[i].placement, PLACE_PRE);
            ck_assert_float_eq(t[i].in_scale, 1.0f);
            ck_assert_float_eq(t[i].residual_scale, 1.0f);
            assert_unit_normal_init(&t[i]);
        }
        free(t);
    }
}
END_TEST

START_TEST(post_ln_is_post_with_unit_scales_everywhere) {
    for (int d = 0; d < N_DEPTHS; d++) {
        int L = depths[d];
        SublayerSpec *t = table_for("post_ln", L);
        for (int i = 0; i < 2 * L; i++) {
            ck_assert_int_eq(t[i].placement, PLACE_POST);
            ck_assert_float_eq(t[i].in_scale, 1.0f);
            ck_assert_float_eq(t[i].residual_scale, 1.0f);
            assert_unit_normal_init(&t[i]);
        }
        free(t);
    }
}
END_TEST

START_TEST(lns_scales_both_sublayers_of_layer_l_by_one_over_sqrt_l) {
    for (int d = 0; d < N_DEPTHS; d++) {
        int L = depths[d];
        SublayerSpec *t = table_for("lns", L);
        for (int l = 1; l <= L; l++)
            for (int s = 0; s < 2; s++) {
                const SublayerSpec *sp = &t[2 * (l - 1) + s];
                ck_assert_int_eq(sp->placement, PLACE_PRE);
                ck_assert_double_eq_tol(sp->in_scale, 1.0 / sqrt((double)l), 1e-7);
                ck_assert_float_eq(sp->residual_scale, 1.0f);
                assert_unit_normal_init(sp);
            }
        /* the scaling really acts beyond the first layer (the LNS release's flag bug left
         * every layer unscaled) */
        if (L > 1) ck_assert_float_lt(t[2 * (L - 1)].in_scale, 1.0f);
        free(t);
    }
}
END_TEST

START_TEST(mix_ln_is_post_up_to_floor_quarter_depth_then_pre) {
    const int expected_boundary[] = {0, 1, 3, 6}; /* floor(0.25 L) for L = 1, 4, 12, 24 */
    for (int d = 0; d < N_DEPTHS; d++) {
        int L = depths[d];
        SublayerSpec *t = table_for("mix_ln", L);
        for (int l = 1; l <= L; l++)
            for (int s = 0; s < 2; s++) {
                const SublayerSpec *sp = &t[2 * (l - 1) + s];
                ck_assert_int_eq(sp->placement, l <= expected_boundary[d] ? PLACE_POST : PLACE_PRE);
                ck_assert_float_eq(sp->in_scale, 1.0f);
                ck_assert_float_eq(sp->residual_scale, 1.0f);
                assert_unit_normal_init(sp);
            }
        free(t);
    }
}
END_TEST

START_TEST(deepnorm_constants_follow_the_depth) {
    for (int d = 0; d < N_DEPTHS; d++) {
        int L = depths[d];
        double a = pow(2.0 * L, 0.25), b = pow(8.0 * L, -0.25);
        SublayerSpec *t = table_for("deepnorm", L);
        for (int i = 0; i < 2 * L; i++) {
            ck_assert_int_eq(t[i].placement, PLACE_POST);
            ck_assert_double_eq_tol(t[i].residual_scale, a, 1e-6);
            ck_assert_float_eq(t[i].in_scale, 1.0f);
            ck_assert_int_eq(t[i].init, INIT_XAVIER);
            if (i % 2 == SUBLAYER_ATTN) {
                ck_assert_float_eq(t[i].init_gain[ROLE_Q], 1.0f);
                ck_assert_float_eq(t[i].init_gain[ROLE_K], 1.0f);
                ck_assert_double_eq_tol(t[i].init_gain[ROLE_V], b, 1e-7);
                ck_assert_double_eq_tol(t[i].init_gain[ROLE_O], b, 1e-7);
            } else {
                ck_assert_double_eq_tol(t[i].init_gain[ROLE_GATE], b, 1e-7);
                ck_assert_double_eq_tol(t[i].init_gain[ROLE_UP], b, 1e-7);
                ck_assert_double_eq_tol(t[i].init_gain[ROLE_DOWN], b, 1e-7);
            }
            /* the published Mix-LN/LNS code used a = 2.828 and gain (8L)^(+1/4) */
            ck_assert_float_lt(t[i].init_gain[i % 2 ? ROLE_DOWN : ROLE_V], 1.0f);
        }
        free(t);
    }
    SchemeParams p;
    scheme_params_default(&p);
    ck_assert_double_eq_tol(scheme_param_get(&p, "deepnorm_alpha", 32), 2.8284271, 1e-6); /* only L=32 */
    ck_assert_double_eq_tol(scheme_param_get(&p, "deepnorm_alpha", 12), 2.2133638, 1e-6);
}
END_TEST

/* deepnorm_release: the LNS and Mix-LN releases' DeepNorm (their NORM_TYPE=deeppost), read
 * from peft_pretraining/modeling_llama.py of lmsdss/LayerNorm-Scaling (5d4dd11) and
 * pixeli99/MixLN (ff45826): `residual = 2.8284271247461903 * residual` before each post-norm
 * sum, whatever the depth; xavier_normal_(gain=(num_layers * 8) ** 0.25) on v_proj, o_proj,
 * gate_proj, up_proj, down_proj; xavier_normal_(gain=1) on q_proj and k_proj. */
START_TEST(deepnorm_release_has_the_releases_constants_at_every_depth) {
    for (int d = 0; d < N_DEPTHS; d++) {
        int L = depths[d];
        const double gain = sqrt(sqrt(8.0 * L)); /* (8L)^(+1/4) >= 1.68 */
        SublayerSpec *t = table_for("deepnorm_release", L);
        for (int i = 0; i < 2 * L; i++) {
            ck_assert_int_eq(t[i].placement, PLACE_POST);
            ck_assert_double_eq_tol(t[i].residual_scale, 2.0 * sqrt(2.0), 1e-6);
            ck_assert_float_eq(t[i].in_scale, 1.0f);
            ck_assert_int_eq(t[i].init, INIT_XAVIER);
            if (i % 2 == SUBLAYER_ATTN) {
                ck_assert_float_eq(t[i].init_gain[ROLE_Q], 1.0f);
                ck_assert_float_eq(t[i].init_gain[ROLE_K], 1.0f);
                ck_assert_double_eq_tol(t[i].init_gain[ROLE_V], gain, 1e-6);
                ck_assert_double_eq_tol(t[i].init_gain[ROLE_O], gain, 1e-6);
            } else {
                ck_assert_double_eq_tol(t[i].init_gain[ROLE_GATE], gain, 1e-6);
                ck_assert_double_eq_tol(t[i].init_gain[ROLE_UP], gain, 1e-6);
                ck_assert_double_eq_tol(t[i].init_gain[ROLE_DOWN], gain, 1e-6);
            }
            ck_assert_float_gt(t[i].init_gain[i % 2 ? ROLE_DOWN : ROLE_V], 1.0f);
        }
        free(t);
    }
    /* DeepNet's formulas and the releases' constants agree only where they must: a at L = 32 */
    SchemeParams p;
    scheme_params_default(&p);
    SublayerSpec *r = table_for("deepnorm_release", 32), *f = table_for("deepnorm", 32);
    ck_assert_float_eq(r[0].residual_scale, f[0].residual_scale);
    ck_assert_float_ne(r[0].init_gain[ROLE_V], f[0].init_gain[ROLE_V]);
    free(r);
    free(f);
    /* scheme.deepnorm_alpha / beta are DeepNet's constants; they leave the releases' row alone */
    p.value[scheme_key_index("deepnorm_alpha")] = 3.0;
    p.value[scheme_key_index("deepnorm_beta")] = 0.1;
    SublayerSpec t[24];
    char err[256];
    ck_assert_int_eq(scheme_build_table(scheme_find("deepnorm_release"), &p, 12, t, err, sizeof err), 0);
    ck_assert_double_eq_tol(t[5].residual_scale, 2.8284271, 1e-6);
    ck_assert_double_eq_tol(t[5].init_gain[ROLE_DOWN], pow(96.0, 0.25), 1e-6);
}
END_TEST

START_TEST(config_overrides_replace_the_derived_constants) {
    SchemeParams p;
    scheme_params_default(&p);
    scheme_param_set(&p, "mixln_alpha", 0.5);
    scheme_param_set(&p, "deepnorm_alpha", 3.0);
    scheme_param_set(&p, "deepnorm_beta", 0.1);
    SublayerSpec t[2 * 12];
    char err[256];
    ck_assert_int_eq(scheme_build_table(scheme_find("mix_ln"), &p, 12, t, err, sizeof err), 0);
    ck_assert_int_eq(t[2 * 5].placement, PLACE_POST); /* layer 6 <= floor(0.5 * 12) */
    ck_assert_int_eq(t[2 * 6].placement, PLACE_PRE);  /* layer 7 */
    ck_assert_int_eq(scheme_build_table(scheme_find("deepnorm"), &p, 12, t, err, sizeof err), 0);
    ck_assert_float_eq(t[0].residual_scale, 3.0f);
    ck_assert_float_eq(t[0].init_gain[ROLE_V], 0.1f);
    scheme_param_set(&p, "mixln_alpha", 1.5);
    ck_assert_int_eq(scheme_build_table(scheme_find("mix_ln"), &p, 12, t, err, sizeof err), -1);
    ck_assert_str_eq(err, "scheme.mixln_alpha: must be in [0, 1], got 1.5");
    scheme_param_set(&p, "mixln_alpha", NAN);
    scheme_param_set(&p, "layerscale_eps", 1e-3);
    scheme_param_set(&p, "dyt_alpha_attn", 1.5);
    ck_assert_int_eq(scheme_build_table(scheme_find("layerscale"), &p, 12, t, err, sizeof err), 0);
    ck_assert_float_eq(t[5].branch_init, 1e-3f);
    ck_assert_int_eq(scheme_build_table(scheme_find("dyt"), &p, 12, t, err, sizeof err), 0);
    ck_assert_float_eq(t[4].dyt_alpha, 1.5f);
    ck_assert_float_eq(t[5].dyt_alpha, 0.2f);
    scheme_param_set(&p, "dsinit_alpha", 0.0); /* (0, 1] */
    ck_assert_int_eq(scheme_build_table(scheme_find("depth_scaled_init"), &p, 12, t, err, sizeof err), -1);
    ck_assert_str_eq(err, "scheme.dsinit_alpha: must be in (0, 1], got 0");
}
END_TEST

START_TEST(scheme_names_are_exact_and_unknown_names_are_not_found) {
    ck_assert_ptr_nonnull(scheme_find("lns"));
    ck_assert_ptr_null(scheme_find("LNS"));
    ck_assert_ptr_null(scheme_find("pre-ln"));
    ck_assert_ptr_null(scheme_find(""));
    ck_assert_int_eq((int)scheme_count(), 14);
    for (size_t i = 0; i < scheme_count(); i++)
        ck_assert_ptr_eq(scheme_find(scheme_at(i)->name), scheme_at(i));
}
END_TEST

/* The plain spec's extras: the config's norm, no second norm, no branch scale, no
 * embedding norm. */
static void assert_no_extras(const SublayerSpec *sp) {
    ck_assert_int_eq(sp->norm_fn, NORM_FN_NORM);
    ck_assert_int_eq(sp->out_norm, 0);
    ck_assert_int_eq(sp->branch, BRANCH_NONE);
    ck_assert_int_eq(sp->embed_norm, 0);
}

START_TEST(the_five_original_schemes_add_nothing) {
    const char *names[] = {"pre_ln", "post_ln", "deepnorm", "mix_ln", "lns"};
    for (size_t k = 0; k < 5; k++)
        for (int d = 0; d < N_DEPTHS; d++) {
            SublayerSpec *t = table_for(names[k], depths[d]);
            for (int i = 0; i < 2 * depths[d]; i++) assert_no_extras(&t[i]);
            free(t);
        }
}
END_TEST

/* Scaled init: o_proj and down_proj at std / sqrt(2L), everything else as pre_ln; with LNS
 * (lns_scaled_init) the norm output of layer l is also scaled by 1/sqrt(l). */
START_TEST(scaled_init_draws_output_projections_at_std_over_sqrt_2L) {
    for (int lns = 0; lns < 2; lns++)
        for (int d = 0; d < N_DEPTHS; d++) {
            int L = depths[d];
            double g = 1.0 / sqrt(2.0 * L);
            SublayerSpec *t = table_for(lns ? "lns_scaled_init" : "scaled_init", L);
            for (int l = 1; l <= L; l++) {
                const SublayerSpec *a = &t[2 * (l - 1)], *m = &t[2 * (l - 1) + 1];
                ck_assert_int_eq(a->placement, PLACE_PRE);
                ck_assert_double_eq_tol(a->in_scale, lns ? 1.0 / sqrt((double)l) : 1.0, 1e-7);
                ck_assert_double_eq_tol(m->in_scale, lns ? 1.0 / sqrt((double)l) : 1.0, 1e-7);
                ck_assert_int_eq(a->init, INIT_NORMAL);
                ck_assert_float_eq(a->init_std, 0.02f);
                ck_assert_float_eq(a->init_gain[ROLE_Q], 1.0f);
                ck_assert_float_eq(a->init_gain[ROLE_K], 1.0f);
                ck_assert_float_eq(a->init_gain[ROLE_V], 1.0f);
                ck_assert_double_eq_tol(a->init_gain[ROLE_O], g, 1e-7);
                ck_assert_float_eq(m->init_gain[ROLE_GATE], 1.0f);
                ck_assert_float_eq(m->init_gain[ROLE_UP], 1.0f);
                ck_assert_double_eq_tol(m->init_gain[ROLE_DOWN], g, 1e-7);
                assert_no_extras(a), assert_no_extras(m);
            }
            free(t);
        }
}
END_TEST

/* DS-Init (Zhang, Titov & Sennrich 2019): U(-g, g), g = alpha sqrt(6/(fan_in+fan_out))/sqrt(l),
 * alpha = 1, on every weight of block l. */
START_TEST(depth_scaled_init_is_xavier_uniform_over_sqrt_l) {
    for (int d = 0; d < N_DEPTHS; d++) {
        int L = depths[d];
        SublayerSpec *t = table_for("depth_scaled_init", L);
        for (int i = 0; i < 2 * L; i++) {
            int l = i / 2 + 1;
            ck_assert_int_eq(t[i].placement, PLACE_PRE);
            ck_assert_int_eq(t[i].init, INIT_XAVIER_UNIFORM);
            for (int r = 0; r < (i % 2 ? 3 : 4); r++)
                ck_assert_double_eq_tol(t[i].init_gain[r], 1.0 / sqrt((double)l), 1e-7);
            assert_no_extras(&t[i]);
        }
        free(t);
    }
}
END_TEST

/* LayerScale (Touvron et al. 2021): a per-channel lambda on both branches, initialized to
 * 0.1 up to depth 18, 1e-5 up to 24, 1e-6 beyond. SkipInit (De & Smith 2020): one scalar per
 * branch, initialized to 0. */
START_TEST(branch_scales_start_where_their_papers_say) {
    const int Ls[] = {1, 4, 12, 18, 19, 24, 25, 48};
    const double eps[] = {0.1, 0.1, 0.1, 0.1, 1e-5, 1e-5, 1e-6, 1e-6};
    for (size_t k = 0; k < sizeof Ls / sizeof Ls[0]; k++) {
        SublayerSpec *t = table_for("layerscale", Ls[k]);
        SublayerSpec *u = table_for("skipinit", Ls[k]);
        for (int i = 0; i < 2 * Ls[k]; i++) {
            ck_assert_int_eq(t[i].placement, PLACE_PRE);
            ck_assert_int_eq(t[i].branch, BRANCH_CHANNEL);
            ck_assert_double_eq_tol(t[i].branch_init, eps[k], eps[k] * 1e-6);
            ck_assert_int_eq(u[i].branch, BRANCH_SCALAR);
            ck_assert_float_eq(u[i].branch_init, 0.0f);
            ck_assert_float_eq(t[i].in_scale, 1.0f);
            ck_assert_int_eq(t[i].out_norm, 0);
            ck_assert_int_eq(u[i].norm_fn, NORM_FN_NORM);
            assert_unit_normal_init(&t[i]);
            assert_unit_normal_init(&u[i]);
        }
        free(t), free(u);
    }
}
END_TEST

/* Sandwich-LN (Ding et al. 2021): x + N2(F(N1(x))) everywhere; Peri-LN (Kim et al. 2025):
 * the same, plus the embedding output normalized (flag on sublayer 0 only). */
START_TEST(sandwich_and_peri_ln_normalize_each_branch_output) {
    for (int d = 0; d < N_DEPTHS; d++) {
        int L = depths[d];
        SublayerSpec *sw = table_for("sandwich_ln", L), *pe = table_for("peri_ln", L);
        for (int i = 0; i < 2 * L; i++) {
            ck_assert_int_eq(sw[i].placement, PLACE_PRE);
            ck_assert_int_eq(pe[i].placement, PLACE_PRE);
            ck_assert_int_eq(sw[i].out_norm, 1);
            ck_assert_int_eq(pe[i].out_norm, 1);
            ck_assert_int_eq(sw[i].embed_norm, 0);
            ck_assert_int_eq(pe[i].embed_norm, i == 0);
            ck_assert_int_eq(sw[i].branch, BRANCH_NONE);
            ck_assert_int_eq(pe[i].norm_fn, NORM_FN_NORM);
            assert_unit_normal_init(&sw[i]);
            assert_unit_normal_init(&pe[i]);
        }
        free(sw), free(pe);
    }
}
END_TEST

/* DyT (Zhu et al. 2025): every norm is gamma tanh(alpha x) + beta; the LLM setting's alpha0
 * is 0.8 before attention and 0.2 elsewhere. */
START_TEST(dyt_replaces_every_norm_with_its_llm_alpha0) {
    for (int d = 0; d < N_DEPTHS; d++) {
        int L = depths[d];
        SublayerSpec *t = table_for("dyt", L);
        for (int i = 0; i < 2 * L; i++) {
            ck_assert_int_eq(t[i].placement, PLACE_PRE);
            ck_assert_int_eq(t[i].norm_fn, NORM_FN_DYT);
            ck_assert_float_eq(t[i].dyt_alpha, i % 2 == SUBLAYER_ATTN ? 0.8f : 0.2f);
            ck_assert_int_eq(t[i].out_norm, 0);
            ck_assert_int_eq(t[i].branch, BRANCH_NONE);
            assert_unit_normal_init(&t[i]);
        }
        free(t);
    }
}
END_TEST

/* Every row carries its label, formula and source; names and labels are distinct; a key two
 * rows share means one constant (same range); every constant's default is in its range at
 * every depth. */
START_TEST(every_row_is_complete_and_its_constants_are_consistent) {
    for (size_t r = 0; r < scheme_count(); r++) {
        const SchemeRow *row = scheme_at(r);
        ck_assert_msg(row->label && *row->label && row->formula && *row->formula &&
                          row->source && *row->source && row->spec,
                      "%s is complete", row->name);
        for (size_t q = 0; q < r; q++) {
            ck_assert_str_ne(scheme_at(q)->name, row->name);
            ck_assert_str_ne(scheme_at(q)->label, row->label);
        }
        ck_assert_str_eq(scheme_label(row->name), row->label);
        for (int j = 0; j < SCHEME_MAX_CONSTS && row->consts[j].key; j++) {
            const SchemeConst *c = &row->consts[j];
            int k = scheme_key_index(c->key);
            ck_assert_int_ge(k, 0);
            const SchemeConst *first = scheme_key_at(k);
            ck_assert_str_eq(first->key, c->key);
            ck_assert(first->lo == c->lo && first->hi == c->hi &&
                      first->lo_open == c->lo_open && first->hi_open == c->hi_open);
            for (int L = 1; L <= 64; L++) {
                double v = c->default_value(L);
                ck_assert_msg(c->lo_open ? v > c->lo : v >= c->lo, "%s default at L=%d", c->key, L);
                ck_assert_msg(c->hi_open ? v < c->hi : v <= c->hi, "%s default at L=%d", c->key, L);
            }
        }
    }
    ck_assert_str_eq(scheme_label("not_a_scheme"), "not_a_scheme");
    ck_assert_int_eq(scheme_key_index("not_a_key"), -1);
    ck_assert_int_le(scheme_key_count(), SCHEME_MAX_KEYS);
}
END_TEST

Suite *schemes_suite(void) {
    Suite *s = suite_create("schemes");
    TCase *tc = tcase_create("table");
    tcase_add_test(tc, pre_ln_is_pre_with_unit_scales_everywhere);
    tcase_add_test(tc, post_ln_is_post_with_unit_scales_everywhere);
    tcase_add_test(tc, lns_scales_both_sublayers_of_layer_l_by_one_over_sqrt_l);
    tcase_add_test(tc, mix_ln_is_post_up_to_floor_quarter_depth_then_pre);
    tcase_add_test(tc, deepnorm_constants_follow_the_depth);
    tcase_add_test(tc, deepnorm_release_has_the_releases_constants_at_every_depth);
    tcase_add_test(tc, config_overrides_replace_the_derived_constants);
    tcase_add_test(tc, scheme_names_are_exact_and_unknown_names_are_not_found);
    tcase_add_test(tc, the_five_original_schemes_add_nothing);
    tcase_add_test(tc, scaled_init_draws_output_projections_at_std_over_sqrt_2L);
    tcase_add_test(tc, depth_scaled_init_is_xavier_uniform_over_sqrt_l);
    tcase_add_test(tc, branch_scales_start_where_their_papers_say);
    tcase_add_test(tc, sandwich_and_peri_ln_normalize_each_branch_output);
    tcase_add_test(tc, dyt_replaces_every_norm_with_its_llm_alpha0);
    tcase_add_test(tc, every_row_is_complete_and_its_constants_are_consistent);
    suite_add_tcase(s, tc);
    return s;
}
