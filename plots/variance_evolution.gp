# variance_evolution.gp — output variance of h_l vs layer l at every probe during training,
# one panel per scheme (pre_ln and lns), one line per probe coloured by training step.
# Run by `normbench report` (src/report.c) in DIR/report with -e: term, out, data
# (variance_evolution.tsv: one index block per scheme; columns step, layer, variance; a
# blank line between probes), plotdir, n, t<i>/c<i>/L<i>, ylo/yhi (shared y range), smin/smax
# (step range of the colour scale).
W = 80 + 560*n; H = 560
load plotdir.'/style.gp'
set multiplot layout 1,n title 'Output variance per layer during training (colour: training step)'
set logscale y
set yrange [ylo:yhi]
set cbrange [smin:smax]
set cblabel 'training step'
set xlabel 'layer l (0 = embeddings)'
set ylabel 'variance of h_l  [log scale]'
set key off
# plasma without its pale end: early probes purple, late ones orange, all visible on white
set palette defined (0 '#0d0887', 0.35 '#7e03a8', 0.7 '#cc4778', 1 '#f48c3c')
do for [i=1:n] {
    L = L_of(i)
    set xrange [-0.5:L+0.5]
    set xtics 0,tic_step(L)
    set title title_of(i)
    plot data index (i-1) using 2:3:1 with linespoints lc palette lw 1.5 pt 7 ps 0.4 notitle
}
unset multiplot
