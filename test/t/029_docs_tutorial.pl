# docs/tutorial.md runs as written: every ```sql block in it, in order, in
# one psql session (ON_ERROR_STOP) on a fresh cluster, so the tutorial
# cannot rot.  The Faiss file it writes (/tmp/tutorial.faiss in the text)
# goes to this test's temp dir instead.  Beyond "no error", the facts the
# page states are checked on each block's own output: EXPLAIN shows the
# ivfflat index, recall rises with nprobe and is 1 with every list probed,
# max_codes and budgets lower it, batch search returns k rows per query and
# the same rows on both paths, the filtered query gets its 10 rows, the
# autotuned defaults reach about the target, and the Faiss file holds every
# row and builds an index without k-means.
use strict;
use warnings;

use File::Spec;
use FindBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# The page lives in docs/ of the repository: beside t/ when a runner copies
# docs/ next to its copy of t/, at $IVF_REPO_ROOT (run_all.sh exports it and
# runs this file from a copy of test/t), or two folders up when prove runs
# test/t in place.
my @candidates = (
	"$FindBin::RealBin/../docs/tutorial.md",
	(defined $ENV{IVF_REPO_ROOT} ? ("$ENV{IVF_REPO_ROOT}/docs/tutorial.md") : ()),
	"$FindBin::RealBin/../../docs/tutorial.md");
my ($page) = grep { -r $_ } @candidates;
if (!defined $page)
{
	fail("docs/tutorial.md is readable (tried @candidates)");
	done_testing();
	exit;
}
note "tutorial: $page";

my $text = slurp_file($page);
my @blocks;
while ($text =~ /^```sql[ \t]*\n(.*?)^```[ \t]*$/msg)
{
	push @blocks, $1;
}
cmp_ok(scalar @blocks, '>=', 20, 'the tutorial has its SQL blocks');

my $tmp = File::Spec->rel2abs(PostgreSQL::Test::Utils::tempdir);
my $faiss = "$tmp/tutorial.faiss";
ok(scalar(grep { m{/tmp/tutorial\.faiss} } @blocks) >= 2,
	'the tutorial writes and reads /tmp/tutorial.faiss (replaced here)');
s{/tmp/tutorial\.faiss}{$faiss}g for @blocks;

my $node = PostgreSQL::Test::Cluster->new('tutorial');
$node->init;
$node->append_conf('postgresql.conf', "max_parallel_workers_per_gather = 0\n");
$node->start;

# One script: a marker line before each block splits the output by block.
my $script = '';
for my $i (0 .. $#blocks)
{
	$script .= "\\echo '#### block $i'\n$blocks[$i]\n";
}
my ($out, $err);
my $rc = $node->psql('postgres', $script, stdout => \$out, stderr => \$err);
is($rc, 0, 'every SQL block runs without an error')
  or diag("psql stderr:\n$err");
unlike($err, qr/^(?:psql:.*)?(ERROR|FATAL|PANIC):/m, 'no error in the session');

my @output = ('') x scalar @blocks;
my $cur;
for my $line (split /\n/, $out)
{
	if ($line =~ /^#### block (\d+)$/) { $cur = $1; next; }
	$output[$cur] .= "$line\n" if defined $cur;
}
is(scalar(grep { $out =~ /^#### block $_$/m } 0 .. $#blocks),
	scalar @blocks, 'every block ran');

# The output of the first block whose SQL matches $re (a test failure, not
# a silent pass, when the page no longer has such a block).
sub block_output
{
	my ($re, $what) = @_;
	for my $i (0 .. $#blocks)
	{
		return $output[$i] if $blocks[$i] =~ $re;
	}
	fail("the tutorial has a block for $what");
	return '';
}

# The recall a block prints: its last line that is a number.
sub recall_of
{
	my ($re, $what) = @_;
	my @nums = grep { /^[0-9.]+$/ } split /\n/, block_output($re, $what);
	return @nums ? $nums[-1] : -1;
}

like(block_output(qr/^EXPLAIN/m, 'EXPLAIN'),
	qr/Index Scan using items_embedding_idx on items/,
	'EXPLAIN shows the ivfflat index');
like(block_output(qr/FROM ivf_index_info\('items_embedding_idx'\)/, 'ivf_index_info'),
	qr/^100\|10\|20000\|\d+$/m, 'the index has 100 lists, nprobe 10, 20000 vectors');

my $r1 = recall_of(qr/SET ivf\.nprobe = 1;\nSELECT ivf_recall/, 'nprobe 1');
my $r10 = recall_of(qr/\ASET ivf\.nprobe = 10;\nSELECT ivf_recall/, 'nprobe 10');
my $r100 = recall_of(qr/SET ivf\.nprobe = 100;/, 'nprobe 100');
my $rprobes = recall_of(qr/SET ivfflat\.probes = 4;/, 'ivfflat.probes');
my $rcodes = recall_of(qr/SET ivf\.max_codes = 1000;/, 'max_codes');
my $rfast = recall_of(qr/SET ivf\.profile = approx_fast;/, 'a profile');
ok($r1 > 0.15 && $r1 < 0.6, "nprobe 1: recall $r1 is low (about 0.33 on the page)");
ok($r10 >= 0.95 && $r10 <= 1, "nprobe 10: recall $r10 (about 0.99)");
is($r100, 1, 'nprobe = lists: recall 1');
ok($rprobes > $r1 && $rprobes < $r10,
	"ivfflat.probes = 4: recall $rprobes between nprobe 1 and 10 (about 0.82)");
ok($rcodes > 0.6 && $rcodes < $r10,
	"max_codes 1000: recall $rcodes below nprobe 10's (about 0.87)");
is($rfast, $r10, 'approx_fast never binds on 20,000 rows: recall as with nprobe 10 alone');

my @budget = grep { /^[0-9.]+$/ }
  split /\n/, block_output(qr/SET ivf\.candidate_budget = 1000;/, 'a budget');
is(scalar @budget, 2, 'the budget block reports two recalls');
ok( @budget == 2
	  && $budget[0] < $rcodes
	  && $budget[1] > $budget[0]
	  && $budget[1] < $r10,
	"budget 1000: uniform @{[ $budget[0] // '?' ]} < distance_weighted @{[ $budget[1] // '?' ]} < nprobe 10");

like(block_output(qr/SET ivf\.iterative_scan = strict_order;/, 'iterative scan'),
	qr/^10$/m, 'the filtered iterative scan returns 10 rows');

my $first = block_output(qr/JOIN items ON items\.ctid = s\.tid/, 'batch join');
is(scalar(() = $first =~ /^\d+\|\d+\|\d+\|[0-9.e+-]+$/mg), 6,
	'batch search joined to the rows: 3 rows for each of 2 queries');
like(block_output(qr/count\(DISTINCT query\)/, 'batch counts'),
	qr/^1000\|100$/m, 'batch search: 10 rows for each of 100 queries');
like(block_output(qr/AS differences/, 'matrix vs csr'),
	qr/^0$/m, 'matrix and csr return the same rows');

my $tuned = block_output(qr/FROM ivf_autotune\(/, 'ivf_autotune');
ok(scalar(() = $tuned =~ /^nprobe=\d+,max_codes=\d+,profile=\w+\|[0-9.]+$/mg) >= 1,
	'ivf_autotune returns its frontier');
like($tuned, qr/\|(0\.9[5-9]\d*|1(\.0+)?)$/m, 'the frontier reaches the target 0.95');
my $after = block_output(qr/SELECT reloptions FROM pg_class/, 'after autotune');
like($after, qr/params=nprobe=\d+/, 'the tuned params are the index\'s defaults');
my ($rtuned) = grep { /^[0-9.]+$/ } split /\n/, $after;
ok(defined $rtuned && $rtuned >= 0.85 && $rtuned <= 1,
	'plain queries with the tuned defaults: recall ' . ($rtuned // '?') . ' near 0.95');

like(block_output(qr/ivf_export_faiss/, 'export'), qr/^20000$/m,
	'ivf_export_faiss writes 20000 vectors');
ok(-s $faiss, 'the Faiss file is in the test\'s temp dir');
like(block_output(qr/items_from_faiss/, 'import'), qr/^100\|0\|20000$/m,
	'an index built from the file: 100 lists, no k-means, every row');

$node->stop;
done_testing();
