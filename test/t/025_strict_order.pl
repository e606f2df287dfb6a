# strict_order and the lists' radii on a streaming replica and after a
# crash.  An insert that lies farther from its list's centroid than the
# list's radius raises the radius in the WAL record that publishes the
# vector; a standby replaying it, and a primary recovering it after an
# immediate stop, must then return that row in exact order under
# ivf.iterative_scan = strict_order (with a stale radius it comes after rows
# farther away, or not at all).  Both nodes run with wal_consistency_checking
# = 'generic': every replayed record is compared with the primary's pages.
#
# Covered: a one-page group of the code layout (head, float page and
# directory in one record), and a slot that VACUUM freed in a five-page
# group of 9000-dimension vectors (segments logged first, then head, the
# last two segment pages and the directory).
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IvfTest;

my $conf = q{
wal_consistency_checking = 'generic'
autovacuum = off
jit = off
};

my $primary = PostgreSQL::Test::Cluster->new('strict_primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', $conf);
$primary->start;
$primary->backup('base');

my $standby = PostgreSQL::Test::Cluster->new('strict_standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->append_conf('postgresql.conf', $conf);
$standby->start;

$primary->safe_psql('postgres', 'CREATE EXTENSION ivf');

# four tight clusters along x, one list each; 9000 dims: two clusters
$primary->safe_psql(
	'postgres', q{
CREATE TABLE c (id int PRIMARY KEY, v vector(2));
INSERT INTO c SELECT i, ARRAY[(i % 4) * 10 + 0.3 * sin(i), 0.3 * cos(i)]::vector(2)
FROM generate_series(1, 400) i;
CREATE INDEX c_l2 ON c USING ivfflat (v vector_l2_ops) WITH (lists = 4);
CREATE TABLE w (id int PRIMARY KEY, v vector(9000));
INSERT INTO w SELECT i, array_fill(((i % 2) * 10)::real + 0.1 * (i % 7), ARRAY[9000])::vector(9000)
FROM generate_series(1, 40) i;
CREATE INDEX w_l2 ON w USING ivfflat (v vector_l2_ops) WITH (lists = 2);
-- free slots in the first cluster's groups, which the inserts below refill
DELETE FROM w WHERE id % 2 = 0 AND id <= 12;
});
$primary->safe_psql('postgres', 'VACUUM w');

my $w_pages = ivf_index_info($primary, 'postgres', 'w_l2')->{pages};

# The outliers: each at the edge of the first cluster's cell, next to a
# query whose nearest list is the second cluster's.
$primary->safe_psql(
	'postgres', q{
INSERT INTO c VALUES (0, '[4.8,0]');
INSERT INTO w SELECT 100 + i, array_fill(4.6::real + 0.01 * i, ARRAY[9000])::vector(9000)
FROM generate_series(1, 3) i;
});

is(ivf_index_info($primary, 'postgres', 'w_l2')->{pages},
	$w_pages, 'w: the inserts refilled slots VACUUM freed');

my %query = (
	c => q{'[5.3,0]'::vector(2)},
	w => q{array_fill(5.5::real, ARRAY[9000])::vector(9000)});

sub first5
{
	my ($node, $table, $mode) = @_;
	my $settings =
	  $mode eq 'exact'
	  ? 'SET enable_indexscan = off; SET enable_bitmapscan = off;'
	  : "SET enable_seqscan = off; SET ivf.nprobe = 1; SET ivf.iterative_scan = $mode;";
	my $tie = $mode eq 'exact' ? ', id' : '';
	return $node->safe_psql('postgres',
		"$settings SELECT string_agg(id::text, ',') FROM "
		  . "(SELECT id FROM $table ORDER BY v <-> $query{$table}$tie LIMIT 5) x");
}

my %exact = map { $_ => first5($primary, $_, 'exact') } qw(c w);
is($exact{c}, '0,369,325,281,237', 'c: the outlier is the nearest row');
is($exact{w}, '103,102,101,7,21', 'w: the outliers are the nearest rows');
# the outliers' list is not the query's nearest
is($primary->safe_psql('postgres',
		"SET enable_seqscan = off; SET ivf.nprobe = 1; SELECT count(*) FROM "
		  . "(SELECT id FROM c ORDER BY v <-> $query{c} LIMIT 5) x WHERE id = 0"),
	'0', 'c: the outlier is not in the nearest list');

for my $t (qw(c w))
{
	is(first5($primary, $t, 'strict_order'), $exact{$t}, "$t: strict_order on the primary");
}

$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));
for my $t (qw(c w))
{
	is(first5($standby, $t, 'strict_order'), $exact{$t}, "$t: strict_order on the standby");
}

# crash recovery replays the inserts (no checkpoint since them)
$primary->stop('immediate');
$primary->start;
for my $t (qw(c w))
{
	is(first5($primary, $t, 'strict_order'), $exact{$t},
		"$t: strict_order after crash recovery");
	ivf_check_clean($primary, 'postgres', "${t}_l2");
}

$standby->stop;
$primary->stop;
done_testing();
