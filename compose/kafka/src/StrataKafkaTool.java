// Small helper used by compose/kafka-*.sh. Runs in ONE JVM what would
// otherwise need several JVM launches (formatting N storage dirs) and gives a
// precise readiness check (N unfenced brokers + internal topics created).
//
//   format CLUSTER_ID QUORUM CONFIG...      QUORUM is "standalone" or an
//                                           --initial-controllers value
//   wait --bootstrap B [--expect N] [--require-node ID] [--timeout-ms T]
//        [--warmup] [--pids P1,P2,...]
//
// Exit codes: 0 ok, 1 failure, 2 timeout, 3 a watched pid died, 64 usage.
import java.io.PrintStream;
import java.lang.reflect.Method;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.DescribeClusterOptions;
import org.apache.kafka.clients.admin.DescribeConsumerGroupsOptions;
import org.apache.kafka.clients.admin.DescribeTransactionsOptions;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.errors.RetriableException;
import org.apache.kafka.common.errors.TimeoutException;

public final class StrataKafkaTool {
    public static void main(String[] args) throws Exception {
        if (args.length == 0) usage();
        switch (args[0]) {
            case "format": System.exit(format(args)); break;
            case "wait": System.exit(waitReady(args)); break;
            default: usage();
        }
    }

    static void usage() {
        System.err.println("usage: StrataKafkaTool format CLUSTER_ID standalone|INITIAL_CONTROLLERS CONFIG...");
        System.err.println("       StrataKafkaTool wait --bootstrap B [--expect N] [--require-node ID] [--timeout-ms T] [--warmup] [--pids P,...]");
        System.exit(64);
    }

    // Calls kafka.tools.StorageTool.execute(String[], PrintStream) once per config.
    static int format(String[] args) throws Exception {
        if (args.length < 4) usage();
        String clusterId = args[1], quorum = args[2];
        Method execute = Class.forName("kafka.tools.StorageTool")
                .getMethod("execute", String[].class, PrintStream.class);
        for (int i = 3; i < args.length; i++) {
            List<String> a = new ArrayList<>(List.of("format", "--config", args[i], "--cluster-id", clusterId));
            if (quorum.equals("standalone")) a.add("--standalone");
            else if (!quorum.equals("none")) { a.add("--initial-controllers"); a.add(quorum); }
            try {
                int rc = (Integer) execute.invoke(null, (Object) a.toArray(new String[0]), System.err);
                if (rc != 0) { System.err.println("format failed for " + args[i] + " (rc=" + rc + ")"); return 1; }
            } catch (java.lang.reflect.InvocationTargetException e) {
                System.err.println("format failed for " + args[i] + ": " + e.getCause());
                return 1;
            }
        }
        return 0;
    }

    static int waitReady(String[] args) throws Exception {
        String bootstrap = null;
        int expect = 1, requireNode = -1;
        long timeoutMs = 60_000;
        boolean warmup = false;
        List<Long> pids = new ArrayList<>();
        for (int i = 1; i < args.length; i++) {
            switch (args[i]) {
                case "--bootstrap": bootstrap = args[++i]; break;
                case "--expect": expect = Integer.parseInt(args[++i]); break;
                case "--require-node": requireNode = Integer.parseInt(args[++i]); break;
                case "--timeout-ms": timeoutMs = Long.parseLong(args[++i]); break;
                case "--warmup": warmup = true; break;
                case "--pids":
                    for (String p : args[++i].split(",")) if (!p.isBlank()) pids.add(Long.parseLong(p.trim()));
                    break;
                default: usage();
            }
        }
        if (bootstrap == null) usage();
        final int required = requireNode;
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);

        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "3000");
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "5000");
        p.put(AdminClientConfig.RECONNECT_BACKOFF_MS_CONFIG, "100");
        p.put(AdminClientConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, "300");
        p.put(AdminClientConfig.RETRY_BACKOFF_MS_CONFIG, "100");
        p.put(AdminClientConfig.RETRY_BACKOFF_MAX_MS_CONFIG, "300");
        p.put(AdminClientConfig.CLIENT_ID_CONFIG, "strata-kafka-wait");

        String last = "no answer yet";
        try (Admin admin = Admin.create(p)) {
            while (true) {
                int dead = deadPid(pids);
                if (dead >= 0) { System.err.println("kafka process " + dead + " exited"); return 3; }
                try {
                    Collection<Node> nodes = admin.describeCluster(new DescribeClusterOptions().timeoutMs(3000))
                            .nodes().get();
                    boolean hasRequired = requireNode < 0 || nodes.stream().anyMatch(n -> n.id() == required);
                    if (nodes.size() >= expect && hasRequired) break;
                    last = "brokers visible: " + nodes;
                } catch (ExecutionException e) {
                    last = String.valueOf(e.getCause());
                }
                if (System.nanoTime() > deadline) { System.err.println("timeout waiting for brokers: " + last); return 2; }
                Thread.sleep(200);
            }
            if (!warmup) return 0;
            // Make the group and transaction coordinators exist (creates
            // __consumer_offsets / __transaction_state) so the first test does
            // not pay for it.
            while (true) {
                int dead = deadPid(pids);
                if (dead >= 0) { System.err.println("kafka process " + dead + " exited"); return 3; }
                int remaining = (int) Math.max(1000, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime()));
                int step = Math.min(remaining, 5000);
                boolean groupOk = coordinatorAnswered(() -> admin.describeConsumerGroups(
                        List.of("strata-kafka-warmup"), new DescribeConsumerGroupsOptions().timeoutMs(step)).all().get());
                boolean txnOk = coordinatorAnswered(() -> admin.describeTransactions(
                        List.of("strata-kafka-warmup"), new DescribeTransactionsOptions().timeoutMs(step)).all().get());
                if (groupOk && txnOk) return 0;
                last = "coordinators not ready (group=" + groupOk + ", txn=" + txnOk + ")";
                if (System.nanoTime() > deadline) { System.err.println("timeout: " + last); return 2; }
                Thread.sleep(200);
            }
        }
    }

    interface Call { Object run() throws Exception; }

    // true when the coordinator answered (success or a non-retriable
    // "not found" style error), false on retriable errors / timeouts.
    static boolean coordinatorAnswered(Call c) throws InterruptedException {
        try {
            c.run();
            return true;
        } catch (ExecutionException e) {
            Throwable t = e.getCause();
            return !(t instanceof RetriableException || t instanceof TimeoutException);
        } catch (InterruptedException e) {
            throw e;
        } catch (Exception e) {
            return false;
        }
    }

    static int deadPid(List<Long> pids) {
        for (long pid : pids) {
            boolean alive = ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false);
            if (alive) {
                // zombie processes count as dead
                try {
                    String stat = new String(java.nio.file.Files.readAllBytes(java.nio.file.Path.of("/proc/" + pid + "/stat")));
                    int close = stat.lastIndexOf(')');
                    if (close > 0 && stat.length() > close + 2 && stat.charAt(close + 2) == 'Z') alive = false;
                } catch (Exception ignored) { }
            }
            if (!alive) return (int) pid;
        }
        return -1;
    }
}
