# prune_block.gp — pruning damage: increase of the validation loss when block l is replaced
# by the identity, vs l, one line per scheme (Siddiqui et al. 2024).
# Run by `normbench report` (src/report.c) in DIR/report with -e: term, out, data
# (prune.tsv: one index block per scheme; columns layer, d_block, d_attn, d_mlp, base_loss),
# plotdir, n, t<i>/c<i>/L<i>.
W = 900; H = 600
load plotdir.'/style.gp'
set title 'Pruning damage: one block removed (replaced by the identity)'
set xlabel 'removed block l'
set ylabel 'Δ validation loss (nats) = loss without block l − loss of the full model'
Lmax = 0; do for [i=1:n] { if (L_of(i) > Lmax) { Lmax = L_of(i) } }
xstep = tic_step(Lmax); xfirst = xstep == 1 ? 1 : 0
set xtics xfirst, xstep
set xrange [0.5:Lmax+0.5]
set xzeroaxis lt -1 lw 1
set key outside right top
plot for [i=1:n] data index (i-1) using 1:2 with linespoints lt lt_of(i) title title_of(i)
