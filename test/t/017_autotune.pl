# ivf_recall and ivf_autotune on real data (siftsmall-128 from
# $IVF_DATA_DIR, else the first 10,000 + 100 images of Debian's
# Fashion-MNIST; L2, lists 40).
#
#  - ivf_recall's exact ground truth (GEMM over the table) agrees with the
#    data set's official one (Fashion-MNIST: a sequential scan's): the
#    recall it reports equals the recall of the same queries' ORDER BY ...
#    LIMIT 10 scored against that ground truth, at several nprobe values;
#  - ivf_autotune reports one NOTICE per operating point and a frontier
#    whose recall rises with time; with apply it stores the cheapest point
#    reaching the target as the index's params, and plain queries (no SET)
#    then reach about that recall on the official queries, which the
#    tuning never saw;
#  - the session's settings are untouched by the tuning, and a cancelled
#    tuning leaves no override behind.
use strict;
use warnings;

use File::Spec;
use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IvfTest;

my $datadir = shared_data_dir(
	'siftsmall-128/siftsmall_base.fvecs',
	'siftsmall-128/siftsmall_query.fvecs',
	'siftsmall-128/siftsmall_groundtruth.ivecs');

my $node = ivf_node('autotune', q{
shared_buffers = 128MB
maintenance_work_mem = 256MB
max_parallel_workers_per_gather = 0
});
my $tmp = File::Spec->rel2abs(PostgreSQL::Test::Utils::tempdir);

my ($base, $queries, $gt);
if ($datadir)
{
	$base = read_fvecs("$datadir/siftsmall-128/siftsmall_base.fvecs");
	$queries = read_fvecs("$datadir/siftsmall-128/siftsmall_query.fvecs");
	$gt = read_ivecs("$datadir/siftsmall-128/siftsmall_groundtruth.ivecs");
	note 'data: siftsmall-128 from IVF_DATA_DIR';
}
else
{
	($base, $queries) = fashion_mnist(10000, 100);
	note 'data: Fashion-MNIST (no siftsmall under IVF_DATA_DIR)';
}
my $dims = scalar @{ $base->[0] };
write_copy_file("$tmp/base", $base, 0);
write_copy_file("$tmp/q", $queries, 0);
$node->safe_psql(
	'postgres', qq{
CREATE TABLE b (id int PRIMARY KEY, v vector($dims));
COPY b FROM '$tmp/base';
CREATE TABLE q (qid int PRIMARY KEY, v vector($dims));
COPY q FROM '$tmp/q';
ANALYZE b, q;
});
if (!$gt)
{
	# exact top 10 by a sequential scan (ties broken by id), before the index exists
	my $out = $node->safe_psql(
		'postgres', q{
SELECT q.qid, string_agg(r.id::text, ',' ORDER BY r.d, r.id)
FROM q CROSS JOIN LATERAL (SELECT id, b.v <-> q.v AS d FROM b ORDER BY d, id LIMIT 10) r
GROUP BY q.qid ORDER BY q.qid});
	$gt = [ map { [ split /,/, (split /\|/)[1] ] } split /\n/, $out ];
	is(scalar @$gt, scalar @$queries, 'sequential-scan ground truth for every query');
}
$node->safe_psql('postgres',
	'CREATE INDEX b_idx ON b USING ivfflat (v vector_l2_ops) WITH (lists = 40)');

# recall@10 of plain ORDER BY queries, scored against the official file
sub official_recall
{
	my ($settings) = @_;
	my $out = $node->safe_psql(
		'postgres', qq{
SET enable_seqscan = off;
$settings
SELECT q.qid, string_agg(r.id::text, ',')
FROM q CROSS JOIN LATERAL (SELECT id FROM b ORDER BY b.v <-> q.v LIMIT 10) r
GROUP BY q.qid ORDER BY q.qid});
	my ($hits, $total) = (0, 0);
	for my $line (split /\n/, $out)
	{
		my ($qid, $ids) = split /\|/, $line;
		my %want = map { $_ => 1 } @{ $gt->[$qid] }[ 0 .. 9 ];
		$hits += grep { $want{$_} } split /,/, $ids;
		$total += 10;
	}
	return $hits / $total;
}

my $qarray = 'ARRAY(SELECT v FROM q ORDER BY qid)';
for my $np (1, 4, 40)
{
	my $mine = $node->safe_psql('postgres',
		"SET ivf.nprobe = $np; SELECT ivf_recall('b_idx', $qarray, 10)");
	my $official = official_recall("SET ivf.nprobe = $np;");
	ok(abs($mine - $official) < 1e-9,
		"nprobe $np: ivf_recall $mine equals the recall against the official ground truth $official");
}

# the tuning, with its NOTICE lines
my ($ret, $stdout, $stderr) = $node->psql(
	'postgres', q{
SET ivf.nprobe = 7;
SELECT params || '|' || recall || '|' || ms_per_query
FROM ivf_autotune('b_idx', 0.9, 10, 300, apply => true);
SHOW ivf.nprobe;});
is($ret, 0, 'ivf_autotune ran');
my ($npoints) = $stderr =~ /(\d+) operating points to explore/;
ok($npoints && $npoints > 10, "it planned $npoints points");
my @lines = $stderr =~ /NOTICE:\s+\d+\/\d+: (.*)$/mg;
is(scalar @lines, $npoints, 'one NOTICE per point');
my $skipped = grep { /\bskip$/ } @lines;
my $starred = grep { /\*$/ } @lines;
ok($skipped > 0, "the pruning rule skipped $skipped points");
ok($starred > 0, "$starred points joined the frontier as they were measured");
like($stderr, qr/now searches with "nprobe=\d+,max_codes=\d+,profile=\w+" by default/,
	'apply stored a point');

my @rows = split /\n/, $stdout;
my $shown = pop @rows;
is($shown, '7', 'the session\'s own nprobe is untouched');
my ($prev_recall, $prev_ms) = (-1, -1);
my $monotone = 1;
my $chosen;
for my $r (@rows)
{
	my ($p, $rec, $ms) = split /\|/, $r;
	$monotone = 0 unless $rec > $prev_recall && $ms >= $prev_ms;
	($prev_recall, $prev_ms) = ($rec, $ms);
	$chosen //= [ $p, $rec ] if $rec >= 0.9;
}
ok(@rows >= 2, scalar(@rows) . ' points on the frontier');
ok($monotone, 'faster points are less accurate');
ok($chosen, "a point reached 0.9: $chosen->[0] ($chosen->[1])");
like(
	$node->safe_psql('postgres', q{SELECT array_to_string(reloptions, ' ') FROM pg_class WHERE relname = 'b_idx'}),
	qr/params=\Q$chosen->[0]\E/,
	'the cheapest point reaching the target is the index\'s params');

# plain queries now use it: held-out queries get about the tuned recall
my $plain = official_recall('');
ok($plain >= 0.85, "plain queries with the index's params: recall $plain on the official queries (tuned for 0.9 on sampled rows)");
my $explicit = official_recall("SET ivf.params = '$chosen->[0]';");
ok(abs($plain - $explicit) < 1e-9, 'the same as setting those params in the session');

# a cancelled tuning leaves the session's search settings as they were
$node->safe_psql('postgres', q{SELECT ivf_set_params('b_idx', 'nprobe=1')});
my $one = official_recall('');
# (sampling and ground truth take a fraction of a second; the experiments,
# 2,000 queries each, several seconds: the timeout falls among them)
my ($r2, $o2, $e2) = $node->psql(
	'postgres', q{
SET enable_seqscan = off;
SET statement_timeout = '1500ms';
SELECT count(*) FROM ivf_autotune('b_idx', 0.9, 10, 2000);
RESET statement_timeout;
SELECT count(*) FROM (SELECT id FROM b ORDER BY v <-> (SELECT v FROM q WHERE qid = 0)) s;},
	on_error_stop => 0);
like($e2, qr/canceling statement due to statement timeout/, 'the tuning was cancelled');
my $list_rows = $node->safe_psql('postgres',
	q{SET enable_seqscan = off; SELECT count(*) FROM (SELECT id FROM b ORDER BY v <-> (SELECT v FROM q WHERE qid = 0)) s});
is($o2, $list_rows, 'after the cancel, the same session scans with the index\'s nprobe = 1 again');
ok($list_rows < 10000, "($list_rows rows: one list, not the tuning's last point)");

$node->stop;
done_testing();
