# ALTER EXTENSION ivf UPDATE from 0.1.0 to 0.2.0.
#
# A database made with version 0.1.0 (a table, an ivfflat index of each
# metric) is updated in place: the old indexes must answer the same
# queries with the same rows and distances as before the update (also
# after a restart, with a fresh backend), ivf_check must find nothing,
# and what 0.2.0 adds must work: halfvec, the access method under the
# name ivf.  The updated extension must hold the same objects as a fresh
# CREATE EXTENSION ivf of 0.2.0 (pg_describe_object of every member).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
$node->append_conf('postgresql.conf', "max_parallel_workers_per_gather = 0\n");
$node->start;

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION ivf VERSION '0.1.0';
CREATE TABLE items (id int PRIMARY KEY, v vector(4));
INSERT INTO items
SELECT i, ARRAY[(i % 5) * 3 + sin(i), (i % 7) * 2 + cos(i), sin(i * 3), (i % 3) - cos(i * 5)]::real[]
FROM generate_series(1, 3000) i;
CREATE INDEX items_l2 ON items USING ivfflat (v vector_l2_ops) WITH (lists = 16);
CREATE INDEX items_ip ON items USING ivfflat (v vector_ip_ops) WITH (lists = 16);
CREATE INDEX items_cos ON items USING ivfflat (v vector_cosine_ops) WITH (lists = 16);
ANALYZE items;
});
is($node->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'ivf'}),
	'0.1.0', 'made with 0.1.0');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_type WHERE typname = 'halfvec'}),
	'0', '0.1.0 has no halfvec');

# each query through its index (enable_seqscan off), the rows and distances
my @queries;
for my $q ('[1,2,0.5,0]', '[12,-1,0.3,1]', '[0,0,0,3]')
{
	for my $op ('<->', '<#>', '<=>')
	{
		push @queries,
		  "SELECT string_agg(id || ':' || round((v $op '$q')::numeric, 5), ' ') FROM "
		  . "(SELECT id, v FROM items ORDER BY v $op '$q' LIMIT 10) s";
	}
}
my $settings = 'SET enable_seqscan = off; SET ivf.nprobe = 3;';

sub answers
{
	my ($label) = @_;
	my @out;
	for my $q (@queries)
	{
		my $plan = $node->safe_psql('postgres', "$settings EXPLAIN (COSTS OFF) $q");
		like($plan, qr/Index Scan using items_/, "$label: index scan for $q");
		push @out, $node->safe_psql('postgres', "$settings $q");
	}
	return \@out;
}

my $before = answers('0.1.0');
my $batch_before = $node->safe_psql('postgres',
	q{SET ivf.nprobe = 3; SELECT string_agg(query || '/' || rank || '/' || tid, ' ' ORDER BY query, rank)
	  FROM ivf_search('items_l2', ARRAY['[1,2,0.5,0]'::vector, '[0,0,0,3]'], 5)});

$node->safe_psql('postgres', 'ALTER EXTENSION ivf UPDATE');
is($node->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'ivf'}),
	'0.2.0', 'updated to 0.2.0');

is_deeply(answers('after update'), $before, 'the old indexes answer identically after the update');
is( $node->safe_psql('postgres',
		q{SET ivf.nprobe = 3; SELECT string_agg(query || '/' || rank || '/' || tid, ' ' ORDER BY query, rank)
	  FROM ivf_search('items_l2', ARRAY['[1,2,0.5,0]'::vector, '[0,0,0,3]'], 5)}),
	$batch_before, 'ivf_search answers identically after the update');
$node->restart;
is_deeply(answers('after restart'), $before, 'and after a restart');
for my $idx ('items_l2', 'items_ip', 'items_cos')
{
	is($node->safe_psql('postgres', "SELECT count(*) FROM ivf_check('$idx')"),
		'0', "ivf_check($idx) finds nothing");
}

# what 0.2.0 adds
is($node->safe_psql('postgres', q{SELECT '[1,2.5,-3]'::halfvec}), '[1,2.5,-3]', 'halfvec text form');
is($node->safe_psql('postgres', q{SELECT halfvec_send('[1,2,3]')}),
	'\x000300003c0040004200', 'halfvec binary form');
is($node->safe_psql('postgres', q{SELECT '[3,4]'::halfvec <-> '[0,0]'}), '5', 'halfvec distance');
is( $node->safe_psql('postgres',
		q{SELECT avg(v::halfvec)::text FROM items WHERE id <= 2}),
	$node->safe_psql('postgres', q{SELECT avg(v::halfvec::vector)::halfvec::text FROM items WHERE id <= 2}),
	'avg(halfvec) over the old table');
$node->safe_psql('postgres',
	q{ALTER TABLE items ADD COLUMN h halfvec(4); UPDATE items SET h = v;
	  CREATE INDEX items_ivf ON items USING ivf (v) WITH (lists = 8);});
is($node->safe_psql('postgres', 'SELECT count(*) FROM items WHERE h::vector <-> v > 0.01'),
	'0', 'halfvec column filled from vector');
like(
	$node->safe_psql('postgres',
		"$settings EXPLAIN (COSTS OFF) SELECT id FROM items ORDER BY v <-> '[1,2,0.5,0]' LIMIT 3"),
	qr/Index Scan using items_(ivf|l2)/,
	'USING ivf index built after the update');
is($node->safe_psql('postgres', "SELECT count(*) FROM ivf_check('items_ivf')"), '0',
	'ivf_check of the USING ivf index');
$node->safe_psql('postgres',
	q{CREATE INDEX items_h ON items USING ivfflat (h halfvec_l2_ops) WITH (lists = 8)});
is( $node->safe_psql('postgres',
		q{SELECT element_type || ' ' || vectors FROM ivf_index_info('items_h')}),
	'halfvec 3000', 'a halfvec index after the update: ivf_index_info reports its element type');
is($node->safe_psql('postgres', "SELECT count(*) FROM ivf_check('items_h')"), '0',
	'ivf_check of the halfvec index');

# the same objects as a fresh install of 0.2.0
my $members = q{SELECT string_agg(d, E'\n' ORDER BY d) FROM (
	SELECT pg_describe_object(classid, objid, objsubid) AS d FROM pg_depend
	WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
	  AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'ivf')) s};
my $updated = $node->safe_psql('postgres', $members);
$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION ivf');
is($node->safe_psql('fresh', q{SELECT extversion FROM pg_extension WHERE extname = 'ivf'}),
	'0.2.0', 'a fresh install is 0.2.0');
is($updated, $node->safe_psql('fresh', $members),
	'the updated extension has the same members as a fresh 0.2.0');
# and its functions the same results (ivf_index_info gained a column)
my $results = q{SELECT string_agg(p.oid::regprocedure::text || ' -> ' || pg_get_function_result(p.oid),
	E'\n' ORDER BY p.oid::regprocedure::text) FROM pg_proc p
	JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
	WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'ivf')};
is($node->safe_psql('postgres', $results), $node->safe_psql('fresh', $results),
	'the updated functions return what a fresh 0.2.0\'s do');

$node->stop;
done_testing();
