# ivfflat recall@10 on the real data sets against their exact ground truth.
#
#   siftsmall-128   10,000 x 128, 100 queries, L2      (vector_l2_ops, lists 100)
#   bigann-10k-128   9,000 x 128, 1,000 queries, L2    (vector_l2_ops, lists 100)
#   bge-m3-1024-1k     826 x 1024, 100 queries, cosine (vector_cosine_ops, lists 20)
#   siftsmall-128   inner product                      (vector_ip_ops, lists 100)
#   bge-m3-1024-1k  inner product (unit vectors)       (vector_ip_ops, lists 20)
#
# For each: recall@10 at nprobe = 1, 10 and lists (all queries in one
# statement: a LATERAL join over a queries table, index scan checked with
# EXPLAIN).  nprobe = lists must find the exact top 10 (recall 1.0, ties
# in distance counted as hits) and return the same ids and distances as a
# sequential scan.
#
# Those sets come from IVF_DATA_DIR (the shared/data folder).  Without it,
# the same checks run on Debian's Fashion-MNIST (the first 10,000 training
# images as base, the first 100 test images as queries, 784 dims, lists 100)
# for L2, cosine and inner product, against an exact ground truth that a
# sequential scan computes.  Run by test/run_all.sh, or by hand like
# test/t/001_copy_binary.pl (with IVF_DATA_DIR=/path/to/shared/data).
use strict;
use warnings;

use File::Spec;
use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use IvfTest;

my $datadir = shared_data_dir(
	'siftsmall-128/siftsmall_base.fvecs',
	'siftsmall-128/siftsmall_query.fvecs',
	'siftsmall-128/groundtruth_l2_top100.ivecs',
	'siftsmall-128/groundtruth_ip_top100.ivecs',
	'bigann-10k-128/base.fvecs',
	'bigann-10k-128/query.fvecs',
	'bigann-10k-128/groundtruth_l2_top100.ivecs',
	'bge-m3-1024-1k/base.fvecs',
	'bge-m3-1024-1k/query.fvecs',
	'bge-m3-1024-1k/groundtruth_cos_top100.ivecs',
	'bge-m3-1024-1k/groundtruth_ip_top100.ivecs');

my $node = ivf_node('ivfflat_recall', q{
shared_buffers = 128MB
maintenance_work_mem = 256MB
max_parallel_workers_per_gather = 0
});
# absolute: the server reads the COPY files (tempdir is relative without TESTDIR)
my $tmp = File::Spec->rel2abs(PostgreSQL::Test::Utils::tempdir);

# How a metric's SQL distance maps onto the ground truth's _dist file
# (squared L2, dot product, cosine similarity), and which way is better.
my %metric = (
	l2 => {
		op => '<->',
		opclass => 'vector_l2_ops',
		to_gt => sub { $_[0] * $_[0] },
		sign => 1,
		tol => sub { 1e-5 * (1 + abs($_[0])) },
	},
	ip => {
		op => '<#>',
		opclass => 'vector_ip_ops',
		to_gt => sub { -$_[0] },
		sign => -1,
		tol => sub { 1e-5 * (1 + abs($_[0])) },
	},
	cos => {
		op => '<=>',
		opclass => 'vector_cosine_ops',
		to_gt => sub { 1 - $_[0] },
		sign => -1,
		tol => sub { 2e-6 },
	},
);

# Load base and query vectors of a data set into <name>_base / <name>_q.
my %loaded;

sub load_set
{
	my ($name, $base, $query) = @_;
	return $loaded{$name} if $loaded{$name};
	my $t0 = time;
	# file names under $datadir, or the vectors themselves
	my $bv = ref $base ? $base : read_fvecs("$datadir/$base");
	my $qv = ref $query ? $query : read_fvecs("$datadir/$query");
	my $dims = scalar @{ $bv->[0] };
	write_copy_file("$tmp/$name.base", $bv, 0);
	write_copy_file("$tmp/$name.q", $qv, 0);
	$node->safe_psql(
		'postgres', qq{
CREATE TABLE ${name}_base (id int PRIMARY KEY, v vector($dims));
COPY ${name}_base FROM '$tmp/$name.base';
CREATE TABLE ${name}_q (qid int PRIMARY KEY, v vector($dims));
COPY ${name}_q FROM '$tmp/$name.q';
ANALYZE ${name}_base, ${name}_q;
});
	is( $node->safe_psql('postgres', "SELECT count(*), count(v) FROM ${name}_base"),
		scalar(@$bv) . '|' . scalar(@$bv),
		"$name: base loaded (" . scalar(@$bv) . " x $dims)");
	# the text literal round-trips: one vector bit for bit
	is( $node->safe_psql(
			'postgres', "SELECT v = '" . vec_literal($bv->[123]) . "' FROM ${name}_base WHERE id = 123"
		),
		't',
		"$name: row 123 equals the file's vector");
	note sprintf('%s: loaded %d base and %d query vectors of %d dims in %.1fs',
		$name, scalar(@$bv), scalar(@$qv), $dims, time - $t0);
	$loaded{$name} = { nbase => scalar(@$bv), nq => scalar(@$qv), dims => $dims };
	return $loaded{$name};
}

# k-NN for every query at once: "qid|id:dist,id:dist,..." (10 per query).
sub knn_sql
{
	my ($name, $op, $k, $order_extra, $where) = @_;
	$order_extra //= '';
	$where //= '';
	return qq{
SELECT q.qid, string_agg(r.id || ':' || r.d, ',' ORDER BY r.d, r.id)
FROM ${name}_q q CROSS JOIN LATERAL
  (SELECT b.id, b.v $op q.v AS d FROM ${name}_base b ORDER BY b.v $op q.v$order_extra LIMIT $k) r
$where
GROUP BY q.qid ORDER BY q.qid};
}

# Recall@10 of $res against the first 10 ground-truth ids; a result that is
# not among them but is as close as the 10th counts as a hit (a tie).
sub recall
{
	my ($res, $gt, $gtd, $m, $nq) = @_;
	my ($hits, $strict) = (0, 0);
	my $worst_q;
	my $worst = 11;
	for my $qid (0 .. $nq - 1)
	{
		my %truth = map { $_ => 1 } @{ $gt->[$qid] }[ 0 .. 9 ];
		my $kth = $gtd->[$qid][9];
		my ($h, $s) = (0, 0);
		for my $r (@{ $res->{$qid} // [] })
		{
			my ($id, $d) = @$r;
			if ($truth{$id})
			{
				$h++;
				$s++;
			}
			else
			{
				my $g = $m->{to_gt}->($d);
				$h++ if $m->{sign} * ($g - $kth) <= $m->{tol}->($kth);
			}
		}
		$h = 10 if $h > 10;
		$hits += $h;
		$strict += $s;
		if ($h < $worst) { $worst = $h; $worst_q = $qid; }
	}
	return ($hits / (10 * $nq), $strict / (10 * $nq), $worst, $worst_q);
}

# Build the index, measure recall at each nprobe, check the thresholds.
sub recall_case
{
	my (%a) = @_;
	my $name = $a{set};
	my $m = $metric{ $a{metric} };
	my $info = load_set($name, $a{base}, $a{query});
	my ($gt, $gtd);
	if (defined $a{gt})
	{
		$gt = read_ivecs("$datadir/$a{gt}.ivecs");
		$gtd = read_fvecs("$datadir/$a{gt}_dist.fvecs");
	}
	else
	{
		# exact top 10 by a sequential scan, before the index exists
		my $seq = knn_batch($node, 'postgres', knn_sql($name, $m->{op}, 10, ', b.id'));
		$gt = [ map { [ map { $_->[0] } @{ $seq->{$_} } ] } 0 .. $info->{nq} - 1 ];
		$gtd = [ map { [ map { $m->{to_gt}->($_->[1]) } @{ $seq->{$_} } ] } 0 .. $info->{nq} - 1 ];
	}
	my $nq = $info->{nq};
	is(scalar(@$gt), $nq, "$a{label}: ground truth has one row per query");

	my $idx = "${name}_$a{metric}_idx";
	my $t0 = time;
	$node->safe_psql('postgres',
		"CREATE INDEX $idx ON ${name}_base USING ivfflat (v $m->{opclass}) "
		  . "WITH (lists = $a{lists}, seed = 7)");
	my $tbuild = time - $t0;
	my $ii = ivf_index_info($node, 'postgres', $idx);
	note sprintf('%s: built %s in %.1fs: %s', $a{label}, $idx, $tbuild,
		join(' ', map { "$_=$ii->{$_}" } sort keys %$ii));
	is($ii->{lists}, $a{lists}, "$a{label}: $a{lists} lists built");
	is($ii->{dims}, $info->{dims}, "$a{label}: dims");
	is($ii->{vectors}, $info->{nbase}, "$a{label}: every base vector indexed");
	is($ii->{seed}, 7, "$a{label}: seed recorded");
	ivf_check_clean($node, 'postgres', $idx, "$a{label}: ivf_check clean after build");

	my $settings = 'SET enable_seqscan = off; SET enable_bitmapscan = off; SET enable_sort = off;';
	my $sql = knn_sql($name, $m->{op}, 10);
	my ($used, $plan) = uses_index($node, 'postgres', $settings, $sql, $idx);
	ok($used, "$a{label}: the LATERAL k-NN query scans $idx") or diag($plan);

	my %got;
	for my $np (@{ $a{nprobes} })
	{
		my $t1 = time;
		my $res = knn_batch($node, 'postgres', "$settings SET ivf.nprobe = $np; $sql");
		my $secs = time - $t1;
		my ($r, $strict, $worst, $worst_q) = recall($res, $gt, $gtd, $m, $nq);
		$got{$np} = $res;
		note sprintf('%s: nprobe=%d/%d recall@10 = %.4f (exact-id %.4f, worst query %d: %d/10), '
			  . '%d queries in %.2fs',
			$a{label}, $np, $a{lists}, $r, $strict, $worst_q, $worst, $nq, $secs);
		is(scalar(keys %$res), $nq, "$a{label}: nprobe=$np: results for each of the $nq queries");
		if ($np == $a{lists})
		{
			is(scalar(grep { @{ $res->{$_} } == 10 } keys %$res),
				$nq, "$a{label}: nprobe=lists: 10 results for each query");
		}
		else
		{
			# a probed list may hold fewer than 10 vectors: fewer results
			my $short = grep { @{ $res->{$_} } < 10 } keys %$res;
			note "$a{label}: nprobe=$np: $short queries got fewer than 10 rows" if $short;
			is(scalar(grep { @{ $res->{$_} } > 10 } keys %$res),
				0, "$a{label}: nprobe=$np: never more than 10 results");
		}
		my $min = $a{min_recall}{$np};
		if ($np == $a{lists})
		{
			is($r, 1, "$a{label}: nprobe=lists finds the exact top 10 (recall 1.0)");
		}
		else
		{
			cmp_ok($r, '>=', $min, "$a{label}: nprobe=$np recall@10 $r >= $min");
		}
		cmp_ok($r, '<=', $a{max_recall}{$np}, "$a{label}: nprobe=$np recall@10 $r <= $a{max_recall}{$np} (probing fewer lists is not exact)")
		  if defined $a{max_recall}{$np};
	}

	# recall grows with nprobe
	my @np = @{ $a{nprobes} };
	for my $i (1 .. $#np)
	{
		my ($r0) = recall($got{ $np[ $i - 1 ] }, $gt, $gtd, $m, $nq);
		my ($r1) = recall($got{ $np[$i] }, $gt, $gtd, $m, $nq);
		cmp_ok($r1, '>=', $r0, "$a{label}: recall at nprobe=$np[$i] >= at nprobe=$np[$i-1]");
	}

	# nprobe = lists equals a sequential scan (exact ORDER BY), first queries
	my $nexact = $a{exact_queries} // 10;
	my $exact = knn_batch(
		$node, 'postgres',
		'SET enable_indexscan = off; SET enable_bitmapscan = off; '
		  . knn_sql($name, $m->{op}, 11, ', b.id', "WHERE q.qid < $nexact"));
	my $full = $got{ $a{lists} };
	my ($same_d, $same_ids, $cmp_ids, $bitwise) = (0, 0, 0, 0);
	for my $qid (0 .. $nexact - 1)
	{
		my @e = @{ $exact->{$qid} };
		my @g = @{ $full->{$qid} };
		my $dist_ok = 1;
		for my $i (0 .. 9)
		{
			my ($ed, $gd) = ($e[$i][1], $g[$i][1]);
			$dist_ok = 0
			  unless abs($ed - $gd) <= ($a{metric} eq 'cos' ? 1e-6 : 1e-6 * (1 + abs($ed)));
		}
		$same_d++ if $dist_ok;
		$bitwise++ if join(',', map { $_->[1] } @e[ 0 .. 9 ]) eq join(',', map { $_->[1] } @g);
		diag("$a{label}: query $qid: index " . join(',', map { "$_->[0]:$_->[1]" } @g)
			  . "\n   seq scan " . join(',', map { "$_->[0]:$_->[1]" } @e[ 0 .. 9 ]))
		  unless $dist_ok;
		# ids must match unless the 10th and 11th are tied
		next if $e[9][1] == $e[10][1];
		$cmp_ids++;
		my @gs = sort { $a->[1] <=> $b->[1] || $a->[0] <=> $b->[0] } @g;
		my @es = sort { $a->[1] <=> $b->[1] || $a->[0] <=> $b->[0] } @e[ 0 .. 9 ];
		my $ids_ok = join(',', sort { $a <=> $b } map { $_->[0] } @gs) eq
		  join(',', sort { $a <=> $b } map { $_->[0] } @es);
		$same_ids++ if $ids_ok;
	}
	note "$a{label}: nprobe=lists vs sequential scan: $bitwise of $nexact queries with identical distance text";
	is($same_d, $nexact,
		"$a{label}: nprobe=lists: the same 10 distances as a sequential scan ($nexact queries)");
	is($same_ids, $cmp_ids,
		"$a{label}: nprobe=lists: the same 10 ids as a sequential scan ($cmp_ids queries without a tie at 10)");

	return $ii;
}

# the default nprobe (ivf.nprobe = 0) is sqrt(100) = 10: same results as 10
# ($S: the set, indexed by ${S}_l2_idx with lists 100; $L: its label)
sub default_nprobe_checks
{
	my ($S, $L) = @_;
	my $s = 'SET enable_seqscan = off; SET enable_bitmapscan = off; ';
	my $sql = knn_sql($S, '<->', 10, '', 'WHERE q.qid < 20');
	my $def = $node->safe_psql('postgres', "$s SET ivf.nprobe = 0; $sql");
	my $ten = $node->safe_psql('postgres', "$s SET ivf.nprobe = 10; $sql");
	my $alias = $node->safe_psql('postgres', "$s SET ivfflat.probes = 10; $sql");
	my $one = $node->safe_psql('postgres', "$s SET ivf.nprobe = 1; $sql");
	is($def, $ten, "$L: ivf.nprobe = 0 uses the default (10 probes)");
	is($alias, $ten, "$L: ivfflat.probes = 10 is the same as ivf.nprobe = 10");
	isnt($one, $ten, "$L: nprobe 1 gives different results than 10");

	# the portable scalar kernels give the same answers as the dispatched ones
	my $full = knn_sql($S, '<->', 10);
	my $auto = $node->safe_psql('postgres', "$s SET ivf.nprobe = 100; $full");
	my $scalar = $node->safe_psql('postgres',
		"$s SET ivf.simd_level = 'scalar'; SET ivf.nprobe = 100; $full");
	is($scalar, $auto,
		"$L: nprobe=lists: ivf.simd_level = scalar gives the same ids and distances");

	# an index-level nprobe option becomes the default
	$node->safe_psql('postgres',
		"CREATE INDEX ${S}_l2_np ON ${S}_base USING ivfflat (v vector_l2_ops) "
		  . 'WITH (lists = 100, nprobe = 1, seed = 7)');
	$node->safe_psql('postgres', "DROP INDEX ${S}_l2_idx");
	my $np_info = ivf_index_info($node, 'postgres', "${S}_l2_np");
	is($np_info->{default_nprobe}, 1, 'index option nprobe = 1 is the default nprobe');
	my $def1 = $node->safe_psql('postgres', "$s SET ivf.nprobe = 0; $sql");
	is($def1, $one, 'the same seed builds the same index: default nprobe 1 results = nprobe 1 results');

	# ALTER INDEX ... SET (nprobe = 10): the option is "the index's default
	# number of lists probed per query" (README), so it should apply to the
	# next query.
	$node->safe_psql('postgres', "ALTER INDEX ${S}_l2_np SET (nprobe = 10)");
	is(ivf_index_info($node, 'postgres', "${S}_l2_np")->{default_nprobe},
		10, 'after ALTER INDEX SET (nprobe = 10) the default nprobe is 10');
	is($node->safe_psql('postgres', "$s SET ivf.nprobe = 0; $sql"),
		$ten, 'after ALTER INDEX SET (nprobe = 10) the default probes 10 lists');
	$node->safe_psql('postgres', "REINDEX INDEX ${S}_l2_np");
	is(ivf_index_info($node, 'postgres', "${S}_l2_np")->{default_nprobe},
		10, 'after ALTER INDEX SET (nprobe = 10) and REINDEX the default nprobe is 10');
	is($node->safe_psql('postgres', "$s SET ivf.nprobe = 0; $sql"),
		$ten, '... and the default probes 10 lists');
	$node->safe_psql('postgres', "DROP INDEX ${S}_l2_np");
}

my $t_all = time;

# ---- no shared data sets: Fashion-MNIST, L2, cosine and inner product ----
if (!$datadir)
{
	note 'data: Fashion-MNIST (IVF_DATA_DIR does not hold the shared data sets)';
	my ($fb, $fq) = fashion_mnist(10000, 100);
	my %common = (
		set => 'fm',
		base => $fb,
		query => $fq,
		lists => 100,
		nprobes => [ 1, 10, 100 ]);
	my $fii = recall_case(
		%common,
		label => 'Fashion-MNIST L2',
		metric => 'l2',
		min_recall => { 1 => 0.55, 10 => 0.97 },
		max_recall => { 1 => 0.85 });
	is($fii->{default_nprobe}, 10, 'Fashion-MNIST L2: default nprobe = sqrt(lists) = 10');
	default_nprobe_checks('fm', 'Fashion-MNIST L2');
	$fii = recall_case(
		%common,
		label => 'Fashion-MNIST cosine',
		metric => 'cos',
		min_recall => { 1 => 0.50, 10 => 0.97 },
		max_recall => { 1 => 0.85 });
	is($fii->{metric}, 'cosine', 'Fashion-MNIST cosine: metric cosine');
	$node->safe_psql('postgres', 'DROP INDEX fm_cos_idx');
	$fii = recall_case(
		%common,
		label => 'Fashion-MNIST inner product',
		metric => 'ip',
		# raw pixels are far from unit length, so the vectors with the
		# largest dot product gather in few lists, far from most queries:
		# 0.09 and 0.43 measured at nprobe 1 and 10 (seed 7)
		min_recall => { 1 => 0.05, 10 => 0.30 },
		max_recall => { 1 => 0.30, 10 => 0.70 });
	is($fii->{metric}, 'inner_product', 'Fashion-MNIST inner product: metric inner_product');
	note sprintf('total %.1fs', time - $t_all);
	$node->stop;
	done_testing();
	exit 0;
}

# ---- siftsmall-128, L2 ----
my $ii = recall_case(
	label => 'siftsmall L2',
	set => 'sift',
	metric => 'l2',
	base => 'siftsmall-128/siftsmall_base.fvecs',
	query => 'siftsmall-128/siftsmall_query.fvecs',
	gt => 'siftsmall-128/groundtruth_l2_top100',
	lists => 100,
	nprobes => [ 1, 10, 100 ],
	min_recall => { 1 => 0.40, 10 => 0.95 },
	max_recall => { 1 => 0.80 });
is($ii->{metric}, 'l2', 'siftsmall L2: metric l2');
is($ii->{default_nprobe}, 10, 'siftsmall L2: default nprobe = sqrt(lists) = 10');

default_nprobe_checks('sift', 'siftsmall L2');

# ---- bigann-10k-128, L2 (1,000 queries) ----
recall_case(
	label => 'bigann L2',
	set => 'bigann',
	metric => 'l2',
	base => 'bigann-10k-128/base.fvecs',
	query => 'bigann-10k-128/query.fvecs',
	gt => 'bigann-10k-128/groundtruth_l2_top100',
	lists => 100,
	nprobes => [ 1, 10, 100 ],
	min_recall => { 1 => 0.33, 10 => 0.90 },
	max_recall => { 1 => 0.80 });

# ---- bge-m3-1024-1k, cosine ----
$ii = recall_case(
	label => 'bge-m3 cosine',
	set => 'bge',
	metric => 'cos',
	base => 'bge-m3-1024-1k/base.fvecs',
	query => 'bge-m3-1024-1k/query.fvecs',
	gt => 'bge-m3-1024-1k/groundtruth_cos_top100',
	lists => 20,
	nprobes => [ 1, 10, 20 ],
	min_recall => { 1 => 0.45, 10 => 0.93 },
	max_recall => { 1 => 0.85 });
is($ii->{metric}, 'cosine', 'bge-m3 cosine: metric cosine');

# ---- inner product ----
$node->safe_psql('postgres', 'DROP INDEX bge_cos_idx');
recall_case(
	label => 'bge-m3 inner product',
	set => 'bge',
	metric => 'ip',
	base => 'bge-m3-1024-1k/base.fvecs',
	query => 'bge-m3-1024-1k/query.fvecs',
	gt => 'bge-m3-1024-1k/groundtruth_ip_top100',
	lists => 20,
	nprobes => [ 1, 10, 20 ],
	min_recall => { 1 => 0.45, 10 => 0.93 },
	max_recall => { 1 => 0.85 });

$node->safe_psql('postgres', 'DROP INDEX IF EXISTS sift_l2_idx');
$ii = recall_case(
	label => 'siftsmall inner product',
	set => 'sift',
	metric => 'ip',
	base => 'siftsmall-128/siftsmall_base.fvecs',
	query => 'siftsmall-128/siftsmall_query.fvecs',
	gt => 'siftsmall-128/groundtruth_ip_top100',
	lists => 100,
	nprobes => [ 1, 10, 100 ],
	min_recall => { 1 => 0.40, 10 => 0.93 },
	max_recall => { 1 => 0.80 });
is($ii->{metric}, 'inner_product', 'siftsmall inner product: metric inner_product');

note sprintf('total %.1fs', time - $t_all);

$node->stop;
done_testing();
