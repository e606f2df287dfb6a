# Faiss interop against Faiss itself (Debian's python3-faiss), on
# siftsmall-128 (10,000 x 128, 100 queries; without IVF_DATA_DIR the first
# 10,000 + 100 images of Debian's Fashion-MNIST, 784 dims), for vector_l2_ops,
# vector_ip_ops and vector_cosine_ops (40 lists):
#
# (a) ivf_export_faiss: faiss.read_index loads the file; it holds every row
#     once, under ivf_faiss_id(ctid), with its vector as stored; each list
#     holds the ids the index's list holds (the rows ivf_search returns for
#     that list's centroid at nprobe 1); and Faiss's search of the file
#     gives the top 10 that ivf_search gives at nprobe 1, 4 and 16.
# (b) CREATE INDEX ... WITH (centroids = file) on a file Faiss trained and
#     filled: the index has Faiss's centroids and puts every row in the
#     list Faiss put it in, but for rows whose two nearest centroids are
#     equal within float rounding (counted); and ivf_search gives the top
#     10 Faiss gives at nprobe 1, 4 and 16.
# And (a) for an index of 2,100-dimensional vectors, whose groups span
# several pages.
#
# Top-10 lists may differ only by ties in distance, or for queries whose
# nprobe-th and next centroid tie within rounding (then the two sides may
# probe different lists; at most 5% of the queries).  The Faiss side runs
# in test/t/faiss_interop.py; the test is skipped when no python3 can
# import faiss and numpy (IVF_PYTHON names one).
use strict;
use warnings;

use File::Spec;
use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use IvfTest;

my $helper = "$FindBin::RealBin/faiss_interop.py";

# the first python3 that imports faiss and numpy
my $python;
for my $cand (grep { defined && $_ ne '' } $ENV{IVF_PYTHON}, 'python3', '/usr/bin/python3')
{
	my ($out, $err) = ('', '');
	my $ok = eval {
		IPC::Run::run([ $cand, $helper, 'probe' ], '<', \undef, '>', \$out, '2>', \$err);
	};
	if ($ok)
	{
		$python = $cand;
		chomp $out;
		note "using $cand: faiss and numpy $out";
		last;
	}
}
plan skip_all => 'no python3 that imports faiss and numpy (install python3-faiss, or set IVF_PYTHON)'
  unless defined $python;

my $datadir = shared_data_dir('siftsmall-128/siftsmall_base.fvecs',
	'siftsmall-128/siftsmall_query.fvecs');
my $lists = 40;
my $nprobes = '1,4,16';

my $node = ivf_node('faiss_interop', q{
shared_buffers = 128MB
maintenance_work_mem = 256MB
max_parallel_workers_per_gather = 0
});
# absolute: the server writes and reads these files
my $tmp = File::Spec->rel2abs(PostgreSQL::Test::Utils::tempdir);

# the helper reads .fvecs files
my ($base, $queries);
if ($datadir)
{
	$base = "$datadir/siftsmall-128/siftsmall_base.fvecs";
	$queries = "$datadir/siftsmall-128/siftsmall_query.fvecs";
	note 'data: siftsmall-128 from IVF_DATA_DIR';
}
else
{
	my ($fb, $fq) = fashion_mnist(10000, 100);
	$base = write_fvecs("$tmp/fm_base.fvecs", $fb);
	$queries = write_fvecs("$tmp/fm_query.fvecs", $fq);
	note 'data: Fashion-MNIST (no siftsmall under IVF_DATA_DIR)';
}

# Run the helper; every "ok|fail NAME # detail" line is a test.
sub faiss_side
{
	my (@args) = @_;
	my ($out, $err) = ('', '');
	my $ran = IPC::Run::run([ $python, $helper, @args ], '<', \undef, '>', \$out, '2>', \$err);
	ok($ran, "faiss_interop.py $args[0] $args[1] runs") or diag($err);
	for my $line (split /\n/, $out)
	{
		next unless $line =~ /^(ok|fail) (.*?)(?: # (.*))?$/;
		my ($res, $name, $detail) = ($1, $2, $3 // '');
		ok($res eq 'ok', $name) or diag($detail);
		note "$name: $detail" if $res eq 'ok' && $detail ne '';
	}
	return $out;
}

# psql -At output of $sql into $file
sub sql_to_file
{
	my ($sql, $file) = @_;
	my $out = $node->safe_psql('postgres', $sql);
	open(my $fh, '>', $file) or die "$file: $!";
	print $fh $out, "\n";
	close $fh or die "$file: $!";
	return $out;
}

# ivf_search's top 10 at each nprobe: "query|rank|faiss id" per file
sub topk_files
{
	my ($index, $prefix) = @_;
	for my $p (split /,/, $nprobes)
	{
		sql_to_file(
			"SELECT s.query, s.rank, ivf_faiss_id(s.tid) FROM ivf_search('$index', "
			  . "(SELECT array_agg(v ORDER BY qid) FROM sift_q), 10, $p) s ORDER BY 1, 2",
			sprintf($prefix, $p));
	}
	return $prefix;
}

# the table: row number = fvecs position, as the helper reads the file
my $bv = read_fvecs($base);
my $qv = read_fvecs($queries);
my $dims = scalar @{ $bv->[0] };
write_copy_file("$tmp/base.copy", $bv, 0);
write_copy_file("$tmp/query.copy", $qv, 0);
$node->safe_psql(
	'postgres', qq{
CREATE TABLE sift (id int PRIMARY KEY, v vector($dims));
COPY sift FROM '$tmp/base.copy';
CREATE TABLE sift_q (qid int PRIMARY KEY, v vector($dims));
COPY sift_q FROM '$tmp/query.copy';
ANALYZE sift;
});
is($node->safe_psql('postgres', 'SELECT count(*) FROM sift'), scalar(@$bv), 'base vectors loaded');
sql_to_file('SELECT id, ivf_faiss_id(ctid) FROM sift ORDER BY id', "$tmp/idmap");

my %opclass = (l2 => 'vector_l2_ops', ip => 'vector_ip_ops', cos => 'vector_cosine_ops');

for my $m (qw(l2 ip cos))
{
	# ---- (a) export ----
	my $idx = "sift_$m";
	$node->safe_psql('postgres',
		"CREATE INDEX $idx ON sift USING ivfflat (v $opclass{$m}) WITH (lists = $lists, seed = 7)");
	my $file = "$tmp/ivf_$m.faiss";
	is($node->safe_psql('postgres', "SELECT ivf_export_faiss('$idx', '$file')"),
		scalar(@$bv), "$m: ivf_export_faiss writes every row");

	# each list's rows: the index's answer at nprobe 1 to the list's centroid
	my ($cout, $cerr) = ('', '');
	IPC::Run::run([ $python, $helper, 'centroids', $file ], '<', \undef, '>', \$cout, '2>', \$cerr)
	  or die "centroids: $cerr";
	my @cents = split /\n/, $cout;
	is(scalar(@cents), $lists, "$m: the file has $lists centroids");
	sql_to_file(
		"SELECT s.query - 1, string_agg(ivf_faiss_id(s.tid)::text, ',') FROM ivf_search('$idx', ARRAY["
		  . join(',', map { "'$_'" } @cents)
		  . "]::vector[], 10000, 1) s GROUP BY s.query ORDER BY 1",
		"$tmp/lists_$m");
	topk_files($idx, "$tmp/topk_$m.%d");
	faiss_side('check-export', $m, $file, $base, $queries, "$tmp/idmap", "$tmp/lists_$m",
		"$tmp/topk_$m.%d", $nprobes);
	$node->safe_psql('postgres', "DROP INDEX $idx");

	# ---- (b) import ----
	my $theirs = "$tmp/faiss_$m.faiss";
	faiss_side('train', $m, $base, $lists, $theirs);
	my $imp = "sift_${m}_imported";
	$node->safe_psql('postgres',
		"CREATE INDEX $imp ON sift USING ivfflat (v $opclass{$m}) WITH (centroids = '$theirs')");
	my $ii = ivf_index_info($node, 'postgres', $imp);
	is($ii->{lists}, $lists, "$m: the imported index has the file's $lists lists");
	is($ii->{vectors}, scalar(@$bv), "$m: every row indexed");
	is($ii->{trained_on}, 0, "$m: trained_on 0 (centroids from a file)");
	ivf_check_clean($node, 'postgres', $imp, "$m: ivf_check clean after the import");
	my $ours = "$tmp/ivf_${m}_imported.faiss";
	$node->safe_psql('postgres', "SELECT ivf_export_faiss('$imp', '$ours')");
	topk_files($imp, "$tmp/topk_${m}_imported.%d");
	faiss_side('check-import', $m, $theirs, $ours, $base, $queries, "$tmp/idmap",
		"$tmp/topk_${m}_imported.%d", $nprobes);
	$node->safe_psql('postgres', "DROP INDEX $imp");
}

# ---- a wide index: a group spans several pages (no codes above 2,036 dims) ----
{
	my $d = 2100;
	srand(16);
	# multiples of 1/64: the same float in the fvecs file and through COPY
	my $rows = [ map { [ map { int(rand(2000) - 1000) / 64 } 1 .. $d ] } 1 .. 300 ];
	my $qs = [ map { [ map { int(rand(2000) - 1000) / 64 } 1 .. $d ] } 1 .. 20 ];
	for my $f ([ 'wide_base', $rows ], [ 'wide_q', $qs ])
	{
		open(my $fh, '>:raw', "$tmp/$f->[0].fvecs") or die $!;
		print $fh pack("l<f<$d", $d, @$_) for @{ $f->[1] };
		close $fh or die $!;
	}
	write_copy_file("$tmp/wide.copy", $rows, 0);
	write_copy_file("$tmp/wide_q.copy", $qs, 0);
	$node->safe_psql(
		'postgres', qq{
CREATE TABLE wide (id int PRIMARY KEY, v vector($d));
COPY wide FROM '$tmp/wide.copy';
CREATE TABLE wide_q (qid int PRIMARY KEY, v vector($d));
COPY wide_q FROM '$tmp/wide_q.copy';
CREATE INDEX wide_l2 ON wide USING ivfflat (v vector_l2_ops) WITH (lists = 4);
});
	is(ivf_index_info($node, 'postgres', 'wide_l2')->{vectors}, 300, 'wide: 300 rows of 2100 dims indexed');
	sql_to_file('SELECT id, ivf_faiss_id(ctid) FROM wide ORDER BY id', "$tmp/wide_idmap");
	my $file = "$tmp/wide.faiss";
	is($node->safe_psql('postgres', "SELECT ivf_export_faiss('wide_l2', '$file')"),
		300, 'wide: ivf_export_faiss writes every row');
	my ($cout, $cerr) = ('', '');
	IPC::Run::run([ $python, $helper, 'centroids', $file ], '<', \undef, '>', \$cout, '2>', \$cerr)
	  or die "centroids: $cerr";
	sql_to_file(
		"SELECT s.query - 1, string_agg(ivf_faiss_id(s.tid)::text, ',') FROM ivf_search('wide_l2', ARRAY["
		  . join(',', map { "'$_'" } split /\n/, $cout)
		  . "]::vector[], 10000, 1) s GROUP BY s.query ORDER BY 1",
		"$tmp/wide_lists");
	for my $p (1, 2)
	{
		sql_to_file(
			"SELECT s.query, s.rank, ivf_faiss_id(s.tid) FROM ivf_search('wide_l2', "
			  . "(SELECT array_agg(v ORDER BY qid) FROM wide_q), 10, $p) s ORDER BY 1, 2",
			"$tmp/wide_topk.$p");
	}
	faiss_side('check-export', 'l2', $file, "$tmp/wide_base.fvecs", "$tmp/wide_q.fvecs",
		"$tmp/wide_idmap", "$tmp/wide_lists", "$tmp/wide_topk.%d", '1,2', 'wide l2');
}

$node->stop;
done_testing();
