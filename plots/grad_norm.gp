# grad_norm.gp — L2 norm of the gradient of each block's parameters vs block l at the final
# probe (Mix-LN's diagnostic), one line per scheme, log y.
# Run by `normbench report` (src/report.c) in DIR/report with -e: term, out, data
# (grad_norm.tsv: one index block per scheme; columns layer, grad_norm, probe_step),
# plotdir, n, t<i>/c<i>/L<i>.
W = 900; H = 600
load plotdir.'/style.gp'
set title 'Gradient norm per block at the final probe'
set xlabel 'block l'
set ylabel "L2 norm of the gradient of block l's parameters  [log scale]"
set logscale y
Lmax = 0; do for [i=1:n] { if (L_of(i) > Lmax) { Lmax = L_of(i) } }
xstep = tic_step(Lmax); xfirst = xstep == 1 ? 1 : 0
set xtics xfirst, xstep
set xrange [0.5:Lmax+0.5]
set key outside right top
plot for [i=1:n] data index (i-1) using 1:2 with linespoints lt lt_of(i) title title_of(i)
