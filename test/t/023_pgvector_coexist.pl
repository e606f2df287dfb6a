# ivf and pgvector in one cluster.
#
# The two extensions cannot share a database (both create a type named
# vector), but one cluster may hold a pgvector database (db1) beside an
# ivf one (db2), and shared_preload_libraries may name either or both.
# ivf must never define a setting pgvector defines: pgvector's
# ivfflat.probes / iterative_scan / max_probes, which ivf reads as aliases.
# For each of: nothing preloaded, 'ivf', 'vector,ivf', 'ivf,vector':
#  - db1: '[1,2,3]'::vector, a pgvector index scan with its ivfflat.probes,
#    pg_dump, and LOAD 'ivf' into a pgvector session all work;
#  - db2: ivf index scans honour SET ivfflat.probes, ivfflat.iterative_scan
#    and ivfflat.max_probes (the same rows as ivf's own knobs), LOAD
#    'vector' into an ivf session works, and with pgvector loaded its
#    default probes (1) counts as not set (the index's default is used).
#
# Needs pgvector installed in the same PostgreSQL (test/run_all.sh's install
# step builds it from ../shared/vendor with test/lib/install-pgvector.sh);
# skipped without it.
use strict;
use warnings;

use File::Spec;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('coexist');
$node->init;
$node->append_conf('postgresql.conf', "max_parallel_workers_per_gather = 0\n");
$node->start;

my $pgvector = $node->safe_psql('postgres',
	q{SELECT default_version FROM pg_available_extensions WHERE name = 'vector'});
if ($pgvector eq '')
{
	$node->stop;
	plan skip_all => 'pgvector is not installed in this PostgreSQL '
	  . '(test/lib/install-pgvector.sh builds it from ../shared/vendor)';
}
note "pgvector $pgvector";

$node->safe_psql('postgres', 'CREATE DATABASE db1');
$node->safe_psql('postgres', 'CREATE DATABASE db2');
$node->safe_psql(
	'db1', q{
CREATE EXTENSION vector;
CREATE TABLE items (id int PRIMARY KEY, embedding vector(3));
INSERT INTO items SELECT i, ARRAY[i % 7, i % 11, i % 13]::vector(3) FROM generate_series(1, 500) i;
CREATE INDEX ON items USING ivfflat (embedding vector_l2_ops) WITH (lists = 4);
});
$node->safe_psql(
	'db2', q{
CREATE EXTENSION ivf;
CREATE TABLE t (id int PRIMARY KEY, v vector(3), cat int);
INSERT INTO t
SELECT i, ARRAY[(i % 4) * 10 + sin(i)::real, (i % 3) * 10 + cos(i)::real, sin(i * 7)::real]::vector(3), i % 5
FROM generate_series(1, 2000) i;
CREATE INDEX t_idx ON t USING ivfflat (v) WITH (lists = 12);
ANALYZE t;
});

my $tmp = File::Spec->rel2abs(PostgreSQL::Test::Utils::tempdir);
my $scan = q{SET enable_seqscan = off;};
# rows an unlimited scan returns: the sizes of the lists it probes
my $count = q{SELECT count(*) FROM (SELECT id FROM t ORDER BY v <-> '[12.5,9.5,0.1]') s;};
# a filtered query whose rows all lie in a far list
my $filtered = q{SELECT count(*) FROM (SELECT id FROM t WHERE cat = 1 AND id % 12 = 6
	ORDER BY v <-> '[12.5,9.5,0.1]' LIMIT 10) s;};

for my $preload ('', 'ivf', 'vector,ivf', 'ivf,vector')
{
	my $name = $preload eq '' ? 'none preloaded' : "preload '$preload'";
	# the last line of the file counts
	$node->append_conf('postgresql.conf', "shared_preload_libraries = '$preload'\n");
	$node->restart;
	is($node->safe_psql('postgres', 'SHOW shared_preload_libraries'),
		$preload, "$name: in effect");

	# db1, pgvector's database
	my ($rc, $out, $err) = $node->psql('db1', q{SELECT '[1,2,3]'::vector});
	is($out, '[1,2,3]', "$name: db1 pgvector vector literal")
	  or diag($err);
	($rc, $out, $err) = $node->psql('db1',
		q{SET enable_seqscan = off; SET ivfflat.probes = 4;
		  SELECT count(*) FROM (SELECT id FROM items ORDER BY embedding <-> '[1,2,3]' LIMIT 3) s});
	is($out, '3', "$name: db1 pgvector index scan with ivfflat.probes")
	  or diag($err);
	my $dump = "$tmp/db1-" . ($preload =~ s/,/-/gr || 'none') . '.sql';
	$node->command_ok([ 'pg_dump', '-d', $node->connstr('db1'), '-f', $dump ],
		"$name: pg_dump of db1");
	like(-e $dump ? slurp_file($dump) : '', qr/CREATE EXTENSION IF NOT EXISTS vector/,
		"$name: db1 dump has pgvector");
	($rc, $out, $err) = $node->psql('db1',
		q{SELECT '[1,2,3]'::vector; LOAD 'ivf'; SET ivfflat.probes = 2; SELECT '[4,5,6]'::vector; SHOW ivfflat.probes});
	is($out, "[1,2,3]\n[4,5,6]\n2", "$name: db1 LOAD 'ivf' after pgvector")
	  or diag($err);

	# db2, ivf's database: pgvector's names act as ivf's knobs
	my $all = $node->safe_psql('db2', "$scan SET ivf.nprobe = 12; $count");
	my $two = $node->safe_psql('db2', "$scan SET ivf.nprobe = 2; $count");
	my $three = $node->safe_psql('db2', "$scan SET ivf.nprobe = 3; $count");
	is($all, 2000, "$name: db2 ivf.nprobe = lists reads every row");
	cmp_ok($two, '<', $all, "$name: db2 ivf.nprobe = 2 reads fewer");
	is($node->safe_psql('db2', "$scan SET ivfflat.probes = 12; $count"),
		$all, "$name: db2 ivfflat.probes = lists reads every row");
	is($node->safe_psql('db2', "$scan SET ivfflat.probes = 2; $count"),
		$two, "$name: db2 ivfflat.probes = 2 acts as ivf.nprobe = 2");
	is($node->safe_psql('db2', "$scan SET ivfflat.probes = 12; SET ivf.nprobe = 2; $count"),
		$two, "$name: db2 ivf.nprobe wins over ivfflat.probes");
	# nothing set: the index's default, round(sqrt(12)) = 3, even where
	# pgvector's ivfflat.probes exists with its default 1
	is($node->safe_psql('db2', "$scan $count"),
		$three, "$name: db2 unset ivfflat.probes leaves the index's default");

	my $without = $node->safe_psql('db2', "$scan SET ivf.nprobe = 1; $filtered");
	cmp_ok($without, '<', 10, "$name: db2 filtered query short without iterative scan");
	is($node->safe_psql('db2',
			"$scan SET ivf.nprobe = 1; SET ivfflat.iterative_scan = relaxed_order; $filtered"),
		10, "$name: db2 ivfflat.iterative_scan = relaxed_order fills the LIMIT");
	is($node->safe_psql('db2',
			"$scan SET ivf.nprobe = 1; SET ivfflat.iterative_scan = relaxed_order; $count"),
		$all, "$name: db2 iterative scan visits every list");
	my $bounded = $node->safe_psql('db2',
		"$scan SET ivf.nprobe = 1; SET ivfflat.iterative_scan = relaxed_order; SET ivfflat.max_probes = 2; $count");
	is($bounded, $two, "$name: db2 ivfflat.max_probes = 2 bounds it to two lists");
	is($node->safe_psql('db2',
			"$scan SET ivf.nprobe = 1; SET ivf.iterative_scan = relaxed_order; SET ivf.max_nprobe = 2; $count"),
		$bounded, "$name: db2 the same as ivf.max_nprobe = 2");

	# builds, with both libraries in the process when both are preloaded:
	# each must use its own functions (same C names in both libraries)
	($rc, $out, $err) = $node->psql('db2',
		q{CREATE INDEX t_idx2 ON t USING ivfflat (v vector_cosine_ops) WITH (lists = 4);
		  SELECT metric FROM ivf_index_info('t_idx2'); DROP INDEX t_idx2});
	is($out, 'cosine', "$name: db2 ivf index build")
	  or diag($err);
	($rc, $out, $err) = $node->psql('db1',
		q{CREATE INDEX items_h ON items USING hnsw (embedding vector_l2_ops);
		  CREATE INDEX items_c ON items USING ivfflat (embedding vector_cosine_ops) WITH (lists = 2);
		  SET enable_seqscan = off;
		  SELECT count(*) FROM (SELECT id FROM items ORDER BY embedding <-> '[1,2,3]' LIMIT 5) s;
		  DROP INDEX items_h, items_c});
	is($out, '5', "$name: db1 pgvector index builds")
	  or diag($err);

	($rc, $out, $err) = $node->psql('db2',
		qq{LOAD 'vector'; $scan SET ivfflat.probes = 2; $count});
	is($out, $two, "$name: db2 LOAD 'vector', then ivfflat.probes = 2")
	  or diag($err);
}

unlike(slurp_file($node->logfile), qr/attempt to redefine parameter/,
	'no setting was defined twice');

$node->stop;
done_testing();
