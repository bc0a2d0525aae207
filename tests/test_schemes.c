/* test_schemes.c — the scheme table against the formulas of docs/design.md section 3, for
 * depths 1, 4, 12 and 24: placement per layer, LNS scales 1/sqrt(l), the Mix-LN boundary
 * floor(0.25 L), DeepNorm a = (2L)^(1/4) and b = (8L)^(-1/4), and the init gains. The
 * expected values are computed here from the papers' formulas, not read from schemes.c. */
#include <check.h>
#include <math.h>
#include <stdlib.h>

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
    ck_assert_double_eq_tol(scheme_deepnorm_alpha(&p, 32), 2.8284271, 1e-6); /* only L=32 */
    ck_assert_double_eq_tol(scheme_deepnorm_alpha(&p, 12), 2.2133638, 1e-6);
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
    p.deepnorm_alpha = 3.0;
    p.deepnorm_beta = 0.1;
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
    p.mixln_alpha = 0.5;
    p.deepnorm_alpha = 3.0;
    p.deepnorm_beta = 0.1;
    SublayerSpec t[2 * 12];
    char err[256];
    ck_assert_int_eq(scheme_build_table(scheme_find("mix_ln"), &p, 12, t, err, sizeof err), 0);
    ck_assert_int_eq(t[2 * 5].placement, PLACE_POST); /* layer 6 <= floor(0.5 * 12) */
    ck_assert_int_eq(t[2 * 6].placement, PLACE_PRE);  /* layer 7 */
    ck_assert_int_eq(scheme_build_table(scheme_find("deepnorm"), &p, 12, t, err, sizeof err), 0);
    ck_assert_float_eq(t[0].residual_scale, 3.0f);
    ck_assert_float_eq(t[0].init_gain[ROLE_V], 0.1f);
    p.mixln_alpha = 1.5;
    ck_assert_int_eq(scheme_build_table(scheme_find("mix_ln"), &p, 12, t, err, sizeof err), -1);
    ck_assert_str_eq(err, "scheme.mixln_alpha: must be in [0, 1], got 1.5");
}
END_TEST

START_TEST(scheme_names_are_exact_and_unknown_names_are_not_found) {
    ck_assert_ptr_nonnull(scheme_find("lns"));
    ck_assert_ptr_null(scheme_find("LNS"));
    ck_assert_ptr_null(scheme_find("pre-ln"));
    ck_assert_ptr_null(scheme_find(""));
    ck_assert_int_eq((int)scheme_count(), 6);
    for (size_t i = 0; i < scheme_count(); i++)
        ck_assert_ptr_eq(scheme_find(scheme_at(i)->name), scheme_at(i));
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
    suite_add_tcase(s, tc);
    return s;
}
