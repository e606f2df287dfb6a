# The prefilter's deferred candidates across VACUUM: a scan reads most
# vectors only as codes and keeps (bound, TID, block, slot) for them; it
# reads one in full only when a query takes rows that far.  If VACUUM
# compacts a group in between, the vector is no longer in that slot: the
# scan must find it again by TID in its group (VACUUM moves vectors only
# within a group), and drop the ones VACUUM removed (rows no snapshot sees).
#
# A cursor fetches one row (the scan has run, nearly everything is
# deferred), VACUUM removes rows deleted before the cursor's snapshot and
# compacts every group, inserts refill the freed slots with other rows'
# vectors, then the cursor fetches the rest: the rows and
# their order must be exactly those of a full read (ivf.prefilter_k = 0),
# and the server log must show deferred candidates found in new slots.
# Runs for L2 and inner product.
use strict;
use warnings;

use File::Spec;
use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IvfTest;

srand(20140);

my $node = PostgreSQL::Test::Cluster->new('ivfflat_prefilter');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
autovacuum = off
max_parallel_workers_per_gather = 0
log_min_messages = debug2
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION ivf');
my $tmp = File::Spec->rel2abs(PostgreSQL::Test::Utils::tempdir);

my $dims = 16;
my $rows = 3000;
my $vecs = clustered_vectors($rows, $dims, 8, 0.2);
my $copy = write_copy_file("$tmp/t.copy", $vecs, 1);
$node->safe_psql(
	'postgres', qq{
CREATE TABLE t (id int, v vector($dims));
CREATE TABLE flag (r int);
COPY t FROM '$copy';
CREATE INDEX t_l2 ON t USING ivfflat (v vector_l2_ops) WITH (lists = 4);
CREATE INDEX t_ip ON t USING ivfflat (v vector_ip_ops) WITH (lists = 4);
});
is($node->safe_psql('postgres', "SELECT prefilter FROM ivf_index_info('t_l2')"),
	't', 'the index has codes');

my $q = vec_literal($vecs->[17]);
my $round = 0;
for my $op ('<->', '<#>')
{
	$round++;
	# rows inserted under the cursor (ids above $rows) are invisible to it
	my $query =
	  "SELECT id, (v $op '$q')::real FROM t WHERE id <= $rows ORDER BY v $op '$q'";

	# rows deleted (and committed) before the cursor's snapshot: VACUUM
	# may remove them while the cursor is open, and compacts their groups
	$node->safe_psql('postgres',
		"DELETE FROM t WHERE id % 3 = $round % 3 AND id % 7 <> 0");

	my $script = "$tmp/cursor$round.sql";
	open(my $fh, '>', $script) or die;
	print $fh qq{
SET enable_seqscan = off;
SET ivf.nprobe = 4;
SET ivf.prefilter_k = 5;
BEGIN;
DECLARE c CURSOR FOR $query;
FETCH 1 FROM c;
DO \$\$ /* marker $round */
BEGIN
	WHILE NOT EXISTS (SELECT 1 FROM flag WHERE r = $round) LOOP
		PERFORM pg_sleep(0.05);
	END LOOP;
END \$\$;
FETCH ALL FROM c;
COMMIT;
};
	close $fh;

	my $log_offset = -s $node->logfile;
	my $h = start_psql_script($node, 'postgres', $script, "$tmp/cursor$round.out");
	ok( poll_until(
			sub {
				$node->safe_psql('postgres',
					"SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%marker $round%' AND pid <> pg_backend_pid()"
				) eq '1';
			},
			60),
		"round $round: the cursor has fetched its first row");

	# compaction under the open cursor, then inserts that refill the slots
	# VACUUM freed: a deferred slot may now hold another row's vector
	$node->safe_psql('postgres', 'VACUUM t');
	$node->safe_psql('postgres',
		"INSERT INTO t SELECT id + 100000 * $round, v FROM t WHERE id % 2 = 0 AND id <= $rows");
	$node->safe_psql('postgres', "INSERT INTO flag VALUES ($round)");
	is(finish_psql_script($h), 0, "round $round: the cursor's session ended well");

	my $got = slurp_file("$tmp/cursor$round.out");
	my $err = slurp_file("$tmp/cursor$round.out.err");
	$got =~ s/^\s*\n//mg;
	my $want = $node->safe_psql(
		'postgres', qq{
SET enable_seqscan = off;
SET ivf.nprobe = 4;
SET ivf.prefilter_k = 0;
$query;
});
	my @got = split /\n/, $got;
	my @want = split /\n/, $want;
	is(scalar(@got), scalar(@want), "round $round ($op): as many rows as a full read")
	  or diag("psql stderr: $err");
	is_deeply(\@got, \@want, "round $round ($op): the same rows in the same order");

	my $log = slurp_file($node->logfile, $log_offset);
	like($log, qr/deferred candidate moved from slot/,
		"round $round ($op): deferred candidates were found in new slots");
	is($node->safe_psql('postgres', "SELECT count(*) FROM ivf_check('t_l2')"),
		'0', "round $round: ivf_check clean");
}

$node->stop;
done_testing();
