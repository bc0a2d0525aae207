# variance_final.gp — output variance of the hidden state h_l vs layer l at the final probe,
# one line per scheme, log y (the Curse-of-Depth signature: grows with l under pre_ln).
# Run by `normbench report` (src/report.c) in DIR/report with -e: term, out, data
# (variance_final.tsv: one index block per scheme; columns layer, variance, probe_step),
# plotdir, n, t<i>/c<i>/L<i>.
W = 900; H = 600
load plotdir.'/style.gp'
set title 'Output variance per layer at the final probe'
set xlabel 'layer l (hidden state h_l after block l; 0 = embeddings)'
set ylabel 'variance of h_l over the hidden dimension  [log scale]'
set logscale y
Lmax = 0; do for [i=1:n] { if (L_of(i) > Lmax) { Lmax = L_of(i) } }
set xtics 0,tic_step(Lmax)
set xrange [-0.5:Lmax+0.5]
set key outside right top
plot for [i=1:n] data index (i-1) using 1:2 with linespoints lt lt_of(i) title title_of(i)
