# prune_sublayer.gp — pruning damage by sublayer: increase of the validation loss when only
# the attention sublayer (left) or only the MLP sublayer (right) of block l is removed, vs l,
# one line per scheme, shared y range.
# Run by `normbench report` (src/report.c) in DIR/report with -e: term, out, data
# (prune.tsv: one index block per scheme; columns layer, d_block, d_attn, d_mlp, base_loss),
# plotdir, n, t<i>/c<i>/L<i>, ylo/yhi (shared y range).
W = 1400; H = 600
load plotdir.'/style.gp'
# fixed panel areas, the legend to the right of the second panel
set multiplot layout 1,2 title 'Pruning damage by sublayer (Δ validation loss, nats)' \
    margins screen 0.075, screen 0.80, screen 0.11, screen 0.88 spacing screen 0.075
Lmax = 0; do for [i=1:n] { if (L_of(i) > Lmax) { Lmax = L_of(i) } }
xstep = tic_step(Lmax); xfirst = xstep == 1 ? 1 : 0
set xtics xfirst, xstep
set xrange [0.5:Lmax+0.5]
set yrange [ylo:yhi]
set xzeroaxis lt -1 lw 1
set xlabel 'block l'
set ylabel 'Δ validation loss (nats)'
set title 'attention sublayer of block l removed'
unset key
plot for [i=1:n] data index (i-1) using 1:3 with linespoints lt lt_of(i) title title_of(i)
set title 'MLP sublayer of block l removed'
set key outside right top
plot for [i=1:n] data index (i-1) using 1:4 with linespoints lt lt_of(i) title title_of(i)
unset multiplot
