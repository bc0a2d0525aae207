# angular_heatmap.gp — angular distance between h_l and h_{l+n} as heatmaps, one panel per
# scheme on a grid of up to 3 columns, as in Gromov et al. 2024 ("The Unreasonable
# Ineffectiveness of the Deeper Layers"): x = first layer l, y = block size n; dark cells
# mean the n blocks after l are close to an identity (candidates for pruning). One script
# for both variants (kind 'angular_heatmap': all tokens; 'angular_last_heatmap': the last
# token, Gromov's choice).
# Run by `normbench report` (src/report.c) in DIR/report with -e: term, out, kind, data
# (angular.tsv / angular_last.tsv: one index block per scheme; columns l, n, d for
# l + n <= L), plotdir, n, t<i>/c<i>/L<i>, cbmax (shared colour range [0:cbmax]).
cols = n <= 3 ? n : (n == 4 ? 2 : 3)
rows = (n + cols - 1) / cols
W = 60 + 460*cols; H = 40 + 440*rows
load plotdir.'/style.gp'
which = (kind eq 'angular_last_heatmap') ? 'last token' : 'mean over tokens'
set multiplot layout rows,cols title sprintf('Angular distance d(h_l, h_{l+n}) = arccos(cos)/pi, %s', which)
# every panel has the same colour bar: one scale for all panels
set cbrange [0:cbmax]
set xlabel 'first layer l'
set ylabel 'block size n (blocks l+1 .. l+n)'
unset grid
set key off
set size ratio -1
do for [i=1:n] {
    L = L_of(i)
    set xrange [-0.5:L-0.5]
    set yrange [0.5:L+0.5]
    set xtics 0,tic_step(L)
    ystep = tic_step(L); yfirst = ystep == 1 ? 1 : 0
    set ytics yfirst, ystep
    set cblabel 'angular distance (0..1)'
    set title title_of(i)
    plot data index (i-1) using 1:2:(0.5):(0.5):3 with boxxyerror fs solid 1.0 noborder lc palette notitle
}
unset multiplot
