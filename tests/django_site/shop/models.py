from django.db import models


class Order(models.Model):
    ref = models.CharField(max_length=40)
    job_id = models.CharField(max_length=36)
